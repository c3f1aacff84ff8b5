// Package dpop checks and makes DPoP proofs (RFC 9449): a JWT a client signs
// for each request with a key it holds, whose public half travels in the
// proof's header, so that a token bound to that key (by its RFC 7638
// thumbprint) is worthless without it.
//
// Verify does every check of RFC 9449 §4.3 that needs only the proof and the
// request: one compact JWS, "typ" dpop+jwt, an asymmetric "alg" from a fixed
// list and matching the key, a public "jwk" without private members, the
// signature, "htm" and "htu" against the request as the server names it,
// "iat" within a window, "ath" against the presented access token, and the
// server's nonce when one is required. Whether a "jti" was seen before is
// the caller's to decide, since only the caller knows where proofs are
// remembered (a database shared by every instance, or a process's memory:
// ReplayCache); Proof.ReplayKey names the proof for that.
//
// The package uses the standard library only, so that package client,
// which other services import, can share it.
package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Header is the request and response header of a proof (RFC 9449 §4.1), and
// NonceHeader the one a server's nonce travels in (§8).
const (
	Header      = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// Algorithms are the proof algorithms accepted, as a WWW-Authenticate
// "algs" parameter lists them (RFC 9449 §7.1). Ed25519 (RFC 9864's fully
// specified name of EdDSA over Ed25519) is accepted as well.
const Algorithms = "ES256 EdDSA"

// Limits on what Verify reads.
const (
	// MaxProofSize bounds a proof header. A P-256 or Ed25519 proof is about
	// 500 bytes; nothing near the limit is legitimate.
	MaxProofSize = 4096
	// MaxIDLength bounds "jti" (a client's random value, typically 16–32 bytes encoded).
	MaxIDLength = 128
	// MaxNonceLength bounds "nonce".
	MaxNonceLength = 256
)

// Window is how old a proof's "iat" may be, and Leeway how far in the
// future it may lie, for clocks slightly ahead of the server's.
const (
	Window = 60 * time.Second
	Leeway = 5 * time.Second
)

// ErrInvalid is the reason of every refusal but a missing or stale nonce:
// errors.Is(err, ErrInvalid). ErrUseNonce says the proof was sound but
// lacked the server's current nonce; the client should retry with the one
// in the DPoP-Nonce header (RFC 9449 §8, error "use_dpop_nonce").
var (
	ErrInvalid  = errors.New("invalid DPoP proof")
	ErrUseNonce = errors.New("a fresh DPoP nonce is required")
)

// Error is a refused proof: Reason is ErrInvalid or ErrUseNonce, Detail
// says what was wrong in words safe to show the client.
type Error struct {
	Reason error
	Detail string
}

func (e *Error) Error() string { return e.Reason.Error() + ": " + e.Detail }

// Unwrap lets errors.Is match the reason.
func (e *Error) Unwrap() error { return e.Reason }

func invalid(format string, args ...any) error {
	return &Error{Reason: ErrInvalid, Detail: fmt.Sprintf(format, args...)}
}

// Request is what a proof must match.
type Request struct {
	// Method is the request's method ("POST").
	Method string
	// URL is the request's URL as the server is reached at: its configured
	// public URL and the request's path, never the Host header a client
	// chose. Query and fragment are ignored on both sides.
	URL string
	// AccessToken is the access token presented with the proof, if any:
	// the proof must then carry its hash ("ath").
	AccessToken string
	// Now is the time "iat" is judged against.
	Now time.Time
	// Nonce, when set, must accept the proof's "nonce"; a proof without
	// one, or with one it refuses, fails with ErrUseNonce.
	Nonce func(nonce string) bool
}

// Proof is a verified proof.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url: the "jkt" a token bound to the key carries.
	Thumbprint string
	ID         string // "jti"
	IssuedAt   time.Time
	Nonce      string
}

// ReplayKey names the proof for replay detection: a "jti" is unique per
// key, so two keys choosing the same one do not collide. It holds no
// secret (both parts are public), but is fixed-size.
func (p *Proof) ReplayKey() [32]byte {
	return sha256.Sum256([]byte(p.Thumbprint + "." + p.ID))
}

// Expires is when the proof's "jti" need no longer be remembered: the
// proof stops being acceptable a Window after its "iat", and Leeway more
// covers a verifier whose clock runs behind the one that accepted it.
func (p *Proof) Expires() time.Time { return p.IssuedAt.Add(Window + Leeway) }

// FromRequest returns the request's proof: "" when it has none, an error
// when it has more than one DPoP header (RFC 9449 §4.3, check 1).
func FromRequest(r *http.Request) (string, error) {
	v := r.Header.Values(Header)
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		if v[0] == "" {
			return "", invalid("empty DPoP header")
		}
		return v[0], nil
	}
	return "", invalid("more than one DPoP header")
}

type header struct {
	Typ  string          `json:"typ"`
	Alg  string          `json:"alg"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
}

type claims struct {
	JTI   string  `json:"jti"`
	HTM   string  `json:"htm"`
	HTU   string  `json:"htu"`
	IAT   *uint64 `json:"iat"`
	ATH   *string `json:"ath"`
	Nonce *string `json:"nonce"`
}

// Verify checks proof against req and returns what it proves. Its errors
// are *Error.
func Verify(proof string, req Request) (*Proof, error) {
	if len(proof) > MaxProofSize {
		return nil, invalid("proof larger than %d bytes", MaxProofSize)
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return nil, invalid("not a compact JWS")
	}
	var h header
	if err := decodeJSON(parts[0], &h); err != nil {
		return nil, invalid("header: %v", err)
	}
	if h.Typ != "dpop+jwt" {
		return nil, invalid(`typ must be "dpop+jwt"`)
	}
	if h.Crit != nil {
		return nil, invalid("crit is not supported")
	}
	if len(h.JWK) == 0 {
		return nil, invalid("no jwk in the header")
	}
	key, err := parseJWK(h.JWK)
	if err != nil {
		return nil, err
	}
	if !key.accepts(h.Alg) {
		return nil, invalid("alg %q is not allowed with a %s key", h.Alg, key.kind())
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, invalid("signature is not base64url")
	}
	if !key.verify([]byte(parts[0]+"."+parts[1]), sig) {
		return nil, invalid("signature does not verify")
	}

	var c claims
	if err := decodeJSON(parts[1], &c); err != nil {
		return nil, invalid("claims: %v", err)
	}
	if c.JTI == "" || len(c.JTI) > MaxIDLength {
		return nil, invalid("jti missing or longer than %d bytes", MaxIDLength)
	}
	if c.HTM != req.Method {
		return nil, invalid("htm does not match the request method")
	}
	if !sameURL(c.HTU, req.URL) {
		return nil, invalid("htu does not match the request URL")
	}
	if c.IAT == nil {
		return nil, invalid("iat missing")
	}
	if *c.IAT > uint64(req.Now.Add(Leeway).Unix()) {
		return nil, invalid("iat is in the future")
	}
	iat := time.Unix(int64(*c.IAT), 0)
	if !iat.Add(Window).After(req.Now) {
		return nil, invalid("iat is older than %s", Window)
	}
	if req.AccessToken != "" {
		want := AccessTokenHash(req.AccessToken)
		if c.ATH == nil || subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(want)) != 1 {
			return nil, invalid("ath does not match the access token")
		}
	}
	p := &Proof{Thumbprint: key.thumbprint(), ID: c.JTI, IssuedAt: iat}
	if c.Nonce != nil {
		if len(*c.Nonce) > MaxNonceLength {
			return nil, invalid("nonce longer than %d bytes", MaxNonceLength)
		}
		p.Nonce = *c.Nonce
	}
	if req.Nonce != nil && (c.Nonce == nil || !req.Nonce(*c.Nonce)) {
		return nil, &Error{Reason: ErrUseNonce, Detail: "the proof must carry the nonce of the DPoP-Nonce header"}
	}
	return p, nil
}

// AccessTokenHash is a proof's "ath" for token: base64url SHA-256.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func decodeJSON(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("not a JSON object of the expected shape")
	}
	return nil
}

// sameURL compares a proof's htu with the request's URL as RFC 9449 §4.3
// asks: without query and fragment, after RFC 3986 §6.2.2–6.2.3
// normalization (case of scheme and host, default port, empty path).
func sameURL(htu, want string) bool {
	a, ok := normalURL(htu)
	if !ok {
		return false
	}
	b, ok := normalURL(want)
	return ok && a == b
}

func normalURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}

// publicKey is a proof's key: P-256 for ES256, Ed25519 for EdDSA.
type publicKey struct {
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
	jwk jwk
}

// jwk holds the members of a public key the thumbprint covers, and the
// private ones whose presence is refused.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// Private members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
	D  *json.RawMessage `json:"d"`
	P  *json.RawMessage `json:"p"`
	Q  *json.RawMessage `json:"q"`
	DP *json.RawMessage `json:"dp"`
	DQ *json.RawMessage `json:"dq"`
	QI *json.RawMessage `json:"qi"`
	K  *json.RawMessage `json:"k"`
}

func parseJWK(raw json.RawMessage) (*publicKey, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, invalid("jwk is not a JSON object")
	}
	if j.D != nil || j.P != nil || j.Q != nil || j.DP != nil || j.DQ != nil || j.QI != nil || j.K != nil {
		return nil, invalid("jwk holds private or symmetric key material")
	}
	switch {
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := coordinate(j.X, 32)
		y, errY := coordinate(j.Y, 32)
		if errX != nil || errY != nil {
			return nil, invalid("jwk: x and y must be 32-byte base64url coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, invalid("jwk: not a point on P-256")
		}
		return &publicKey{ec: pub, jwk: jwk{Kty: j.Kty, Crv: j.Crv, X: j.X, Y: j.Y}}, nil
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		if j.Y != "" {
			return nil, invalid("jwk: an Ed25519 key has no y")
		}
		x, err := coordinate(j.X, ed25519.PublicKeySize)
		if err != nil {
			return nil, invalid("jwk: x must be a 32-byte base64url Ed25519 key")
		}
		return &publicKey{ed: ed25519.PublicKey(x), jwk: jwk{Kty: j.Kty, Crv: j.Crv, X: j.X}}, nil
	}
	return nil, invalid("jwk must be an EC P-256 or OKP Ed25519 public key")
}

// coordinate decodes a fixed-size base64url value, refusing padding and
// non-canonical encodings so that one key has one thumbprint.
func coordinate(s string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != size {
		return nil, errors.New("bad coordinate")
	}
	return b, nil
}

func (k *publicKey) kind() string {
	if k.ec != nil {
		return "P-256"
	}
	return "Ed25519"
}

func (k *publicKey) accepts(alg string) bool {
	if k.ec != nil {
		return alg == "ES256"
	}
	return alg == "EdDSA" || alg == "Ed25519"
}

func (k *publicKey) verify(input, sig []byte) bool {
	if k.ec != nil {
		// JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 §3.4).
		if len(sig) != 64 {
			return false
		}
		digest := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, digest[:], r, s)
	}
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, input, sig)
}

// thumbprint is RFC 7638: SHA-256 over the required members in
// lexicographic order, without whitespace.
func (k *publicKey) thumbprint() string {
	var canonical string
	if k.ec != nil {
		canonical = `{"crv":"` + k.jwk.Crv + `","kty":"EC","x":"` + k.jwk.X + `","y":"` + k.jwk.Y + `"}`
	} else {
		canonical = `{"crv":"` + k.jwk.Crv + `","kty":"OKP","x":"` + k.jwk.X + `"}`
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Challenge is a WWW-Authenticate value for the DPoP scheme (RFC 9449 §7.1)
// with the given error code ("invalid_token", "invalid_dpop_proof",
// "use_dpop_nonce"); an empty code makes a bare challenge.
func Challenge(code, description string) string {
	s := "DPoP"
	if code != "" {
		s += ` error="` + code + `"`
		if description != "" {
			s += `, error_description="` + strings.NewReplacer(`"`, `'`, `\`, `/`).Replace(description) + `"`
		}
		s += ","
	}
	return s + ` algs="` + Algorithms + `"`
}
