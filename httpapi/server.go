// Package httpapi is sessiond's HTTP interface: NewServer returns the whole
// API as one http.Handler. routes.go lists every endpoint; each resource has
// its own file of handler makers; problem.go is the one table from error
// codes to HTTP statuses. Handlers decode, call sessiond.AuthService, encode:
// no business rule lives here.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/sessiond/sessiond"
)

// JWKSSource publishes the signing keys' public halves as a JWKS document.
type JWKSSource interface{ JWKS() []byte }

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is what the server is built from.
type Deps struct {
	Logger *slog.Logger
	Auth   sessiond.AuthService
	JWKS   JWKSSource
	Ready  Pinger
	// Instruments, when set, instruments every request. The metrics are
	// not served here: /metrics belongs on the operators' listener only.
	Instruments *Metrics
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Browser configures cookie mode and CORS (cookie.go, cors.go).
	Browser Browser
	// Account serves the account page under /account/; nil leaves it out.
	Account http.Handler
	// Admin and AdminAuth serve /admin/v1 (admin.go); without AdminAuth
	// every admin call is refused with 401.
	Admin     sessiond.AdminService
	AdminAuth sessiond.AdminAuthenticator
	// Accounts serves password reset and email verification (account.go);
	// nil answers those routes 404.
	Accounts sessiond.AccountService
	// MFA serves second factors and the login step they add (mfa.go);
	// nil answers those routes 404.
	MFA sessiond.MFAService
	// Passkeys serves passkey registration and login (passkey.go); nil
	// answers those routes 404.
	Passkeys sessiond.PasskeyService
	// PublicURL is the URL clients reach the API at (https://auth.example.com):
	// a DPoP proof's htu is it and the request's path (dpop.go).
	PublicURL string
	// DPoPNonce returns the server's current DPoP nonce; nil or "" when
	// nonces are off. Every response to a request with a proof carries it.
	DPoPNonce func() string
}

// NewServer returns the sessiond HTTP API.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	h := d.Instruments.instrument(mux)
	h = dpopNonces(newDPoPDeps(d), h)
	h = cors(d.Browser, h) // outside instrument, which must wrap the mux directly
	h = recoverer(d.Logger, d.Instruments, h)
	h = requestID(h)
	return h
}
