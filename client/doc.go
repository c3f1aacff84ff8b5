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
//
// Device-bound sessions (DPoP, RFC 9449): a Client given a key
// (Options.DPoP, from dpop.NewKey or, to keep a login across runs,
// dpop.KeyFrom of a saved private key) logs in with a proof by it, so that
// sessiond binds the session to the key; it then proves every refresh and
// logout, and sends its access token as "Authorization: DPoP" with a proof
// per request. A service accepts such tokens with Verifier.VerifyRequest
// (request.go) or Middleware, given its own public URL
// (VerifierOptions.PublicURL): the proof must be for that URL and the
// request's path, by the token's key (Claims.JKT), for this token, and new.
// Verify, which sees a token without its request, refuses bound tokens.
package client
