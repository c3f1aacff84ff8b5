// Package client is what another Go service needs to work with sessiond.
// It imports nothing of sessiond's server code, only the standard library.
//
// Services that receive requests verify access tokens offline: NewVerifier
// (verifier.go) fetches sessiond's JWKS, Verifier.Verify checks a token, and
// Verifier.Middleware protects an http.Handler and puts the Claims in the
// request context (ClaimsFromContext); Require (require.go) adds conditions
// on them for one route: a second factor, a recent sign-in. Start reading
// at example_test.go.
//
// Programs that call services on a user's behalf hold a login: New
// (client.go) returns a Client whose Login, Refresh, Logout, Sessions and
// RevokeSession call sessiond, and whose HTTPClient (transport.go) attaches
// the access token to every request and refreshes it by itself.
package client
