package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/dpop"
)

// The five lines a service needs: a Verifier built from sessiond's JWKS
// URL, issuer and audience, its Middleware around the handlers, and
// ClaimsFromContext inside them.
func Example() {
	v, err := client.NewVerifier(context.Background(), "http://127.0.0.1:8080/.well-known/jwks.json", "http://127.0.0.1:8080", "sessiond", nil)
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/notes", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := client.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "notes of user %s (session %s)\n", claims.UserID, claims.SessionID)
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", nil))
}

// A program acting for a user logs in once; its HTTP client then attaches
// the access token to every request to sessiond and the services named in
// TokenOrigins, and refreshes it by itself. Persist the refresh token in
// OnTokens to resume later with Resume.
func ExampleClient() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", &client.Options{
		TokenOrigins: []string{"http://127.0.0.1:8081"},
		OnTokens:     func(t client.Tokens) { /* save t.RefreshToken */ },
	})
	if _, err := c.Login(ctx, "ada@example.com", "correct horse battery staple"); err != nil {
		log.Fatal(err) // a *client.Error: err.(*client.Error).Code says why
	}
	resp, err := c.HTTPClient().Get("http://127.0.0.1:8081/notes")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}

// A service that accepts DPoP-bound tokens names its own public URL, which
// every proof must be for; Middleware then takes Bearer and DPoP tokens.
func ExampleVerifier_VerifyRequest() {
	v, err := client.NewVerifier(context.Background(), "http://127.0.0.1:8080/.well-known/jwks.json", "http://127.0.0.1:8080", "sessiond",
		&client.VerifierOptions{PublicURL: "http://127.0.0.1:8081"})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/notes", func(w http.ResponseWriter, r *http.Request) {
		claims, err := v.VerifyRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized) // or use v.Middleware, which answers with the right challenge
			return
		}
		fmt.Fprintf(w, "notes of user %s, bound to key %q\n", claims.UserID, claims.JKT)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", nil))
}

// A program that binds its login to a key: sessiond then refreshes the
// session only with a proof by it, and the services get the access token
// as DPoP with a proof per request. Keep the key with the refresh token
// (dpop.KeyFrom rebuilds it from key.Signer()) to resume the login later.
func ExampleOptions_dPoP() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", &client.Options{
		DPoP:         dpop.NewKey(),
		TokenOrigins: []string{"http://127.0.0.1:8081"},
	})
	if _, err := c.Login(ctx, "ada@example.com", "correct horse battery staple"); err != nil {
		log.Fatal(err)
	}
	resp, err := c.HTTPClient().Get("http://127.0.0.1:8081/notes")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}
