// Package token makes and checks the credentials sessiond hands out: access
// tokens (EdDSA-signed JWTs, RFC 9068 profile), the JWKS document that lets
// other services verify them offline, and refresh tokens with their
// rotation chain.
//
// Start reading at keyring.go (which keys sign, which are published and for
// how long), then access.go (Issuer and Verifier) and refresh.go (Refresher,
// the encoding and derivation behind the rotation rules of the root
// package's refresh.go).
package token
