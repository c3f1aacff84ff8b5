// Command notes is a tiny notes API protected by sessiond: it shows what a
// service needs to accept sessiond's access tokens (see README.md beside
// this file). Each user sees only their own notes, kept in memory.
//
//	GET  /notes   the caller's notes
//	POST /notes   {"text": "..."} adds one
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/sessiond/sessiond/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sessiond := getenv("SESSIOND_URL", "http://127.0.0.1:8080")
	addr := getenv("NOTES_ADDR", "127.0.0.1:8081")
	// The public URL lets it check the DPoP proofs of device-bound sessions.
	v, err := client.NewVerifier(ctx, sessiond+"/.well-known/jwks.json",
		getenv("SESSIOND_ISSUER", sessiond), getenv("SESSIOND_AUDIENCE", "sessiond"),
		&client.VerifierOptions{PublicURL: getenv("NOTES_PUBLIC_URL", "http://"+addr)})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: addr, Handler: newServer(v), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	fmt.Printf("notes listening on http://%s\n", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// note is one note.
type note struct {
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// newServer is the notes API behind v's middleware: no handler runs
// without verified claims.
func newServer(v *client.Verifier) http.Handler {
	var mu sync.Mutex
	notes := map[string][]note{} // by user id
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		claims, _ := client.ClaimsFromContext(r.Context())
		mu.Lock()
		list := append([]note{}, notes[claims.UserID]...)
		mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"notes": list})
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		claims, _ := client.ClaimsFromContext(r.Context())
		var in struct {
			Text string `json:"text"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&in); err != nil || in.Text == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"text": "..."}`})
			return
		}
		n := note{Text: in.Text, CreatedAt: time.Now().UTC()}
		mu.Lock()
		notes[claims.UserID] = append(notes[claims.UserID], n)
		mu.Unlock()
		writeJSON(w, http.StatusCreated, n)
	})
	return v.Middleware(mux)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
