package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond/dpop"
)

// Reasons a token is refused. Verify's errors are *VerifyError, and
// errors.Is(err, ErrExpired) and the like tell which reason applies.
var (
	ErrMalformed       = errors.New("malformed token")
	ErrAlgorithm       = errors.New("algorithm not allowed")
	ErrType            = errors.New("not an access token")
	ErrUnknownKey      = errors.New("unknown signing key")
	ErrSignature       = errors.New("invalid signature")
	ErrExpired         = errors.New("token expired")
	ErrNotYetValid     = errors.New("token not valid yet")
	ErrIssuer          = errors.New("wrong issuer")
	ErrAudience        = errors.New("wrong audience")
	ErrMissingClaim    = errors.New("missing claim")
	ErrLifetime        = errors.New("token lifetime too long")
	ErrKeysUnavailable = errors.New("signing keys unavailable")
	// ErrNoToken: the request carries no access token (VerifyRequest).
	ErrNoToken = errors.New("no access token")
	// ErrDPoP: the token is DPoP-bound and its proof is missing, invalid,
	// by another key or replayed, or it was sent with the wrong scheme
	// (VerifyRequest). A *VerifyError of this reason wraps the
	// *dpop.Error, when there is one, as Err.
	ErrDPoP = errors.New("DPoP proof refused")
)

// VerifyError says why a token was refused: Reason is one of the Err*
// variables above, Detail a human-readable specific, Err a cause if any.
type VerifyError struct {
	Reason error
	Detail string
	Err    error
}

func (e *VerifyError) Error() string {
	s := e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is match both the reason and the cause.
func (e *VerifyError) Unwrap() []error { return []error{e.Reason, e.Err} }

func refuse(reason error, detail string) error { return &VerifyError{Reason: reason, Detail: detail} }

// Claims are the verified contents of a sessiond access token.
type Claims struct {
	UserID    string    // sub
	SessionID string    // sid
	Issuer    string    // iss
	Audience  []string  // aud
	IssuedAt  time.Time // iat
	ExpiresAt time.Time // exp
	NotBefore time.Time // nbf; zero when absent
	ID        string    // jti
	KeyID     string    // the header's kid
	// AMR says how the user authenticated (RFC 8176: "pwd", "otp", "hwk",
	// "user", "ext"…) and AuthTime when; both empty in older tokens. A
	// service that wants a recent or a strong sign-in checks them.
	AMR      []string
	AuthTime time.Time // auth_time; zero when absent
	// JKT is the RFC 7638 thumbprint of the key the token is bound to
	// (cnf.jkt, RFC 9449), empty for an unbound token. A bound token is
	// worth nothing without a DPoP proof by that key: VerifyRequest checks
	// one, Verify does not.
	JKT string
}

// Bound reports whether the token is DPoP-bound (it carries cnf.jkt).
func (c *Claims) Bound() bool { return c.JKT != "" }

// VerifierOptions tune a Verifier; the zero value is a good default.
type VerifierOptions struct {
	// HTTPClient fetches the JWKS; default a client with a 10s timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew tolerated on exp, nbf and iat; default 5s,
	// negative for none.
	Leeway time.Duration
	// MinRefetchInterval bounds refetches on an unknown kid: at most one per
	// interval, so a flood of forged kids cannot make the verifier hammer
	// sessiond; default 10s.
	MinRefetchInterval time.Duration
	// RefreshInterval is how often the JWKS is refetched in the background;
	// default 5m, negative turns it off.
	RefreshInterval time.Duration
	// MaxLifetime is the longest exp - iat accepted; default 24h, sessiond's
	// own ceiling on SESSIOND_ACCESS_TTL. A token meant to live longer was not
	// issued by a sessiond that is configured sanely: it was forged from a
	// stolen key or a copied database, and refusing it bounds the harm. Set
	// it to sessiond's access TTL (plus a little) to be strict.
	MaxLifetime time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// PublicURL is this service's own URL as its clients reach it
	// ("https://api.example.com", with the path prefix a proxy strips, if
	// any): a DPoP proof's htu must be PublicURL + the request's path.
	// Without it VerifyRequest refuses every DPoP-bound token, since the
	// only other source of the URL is the Host header, which the client
	// chooses.
	PublicURL string
	// DPoPReplayCacheSize bounds the proofs remembered to catch a replay
	// (each for about 65 seconds); default 100 000. When it is full of
	// unexpired proofs, further DPoP requests are refused rather than a
	// proof forgotten early: size it above the DPoP requests a minute the
	// service expects.
	DPoPReplayCacheSize int
}

// DefaultDPoPReplayCacheSize is VerifierOptions.DPoPReplayCacheSize's default.
const DefaultDPoPReplayCacheSize = 100_000

// Verifier checks sessiond access tokens offline, with keys from the JWKS.
// It is safe for concurrent use.
type Verifier struct {
	issuer, audience string
	leeway           time.Duration
	maxLifetime      time.Duration
	now              func() time.Time
	keys             *keySet
	stop             context.CancelFunc
	publicURL        string // without a trailing slash; "" when not configured
	replays          *dpop.ReplayCache

	// headers remembers header segments of tokens whose signature verified,
	// with their kid: every token a key signs has the same header, so its
	// JSON need not be parsed again. Only verified headers enter, so forged
	// ones cannot grow it; maxHeaders bounds it across rotations.
	headers  sync.Map // string → string
	nHeaders atomic.Int32
}

const maxHeaders = 64

// DefaultMaxLifetime is VerifierOptions.MaxLifetime's default.
const DefaultMaxLifetime = 24 * time.Hour

// NewVerifier fetches the JWKS at jwksURL once (failing if it cannot, so a
// misconfigured service stops at start) and returns a Verifier for tokens
// with the given issuer and audience. The background refresh runs until ctx
// is done or Close is called. opts may be nil.
func NewVerifier(ctx context.Context, jwksURL, issuer, audience string, opts *VerifierOptions) (*Verifier, error) {
	var o VerifierOptions
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = 5 * time.Second
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if o.MinRefetchInterval == 0 {
		o.MinRefetchInterval = 10 * time.Second
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = 5 * time.Minute
	}
	if o.MaxLifetime <= 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DPoPReplayCacheSize <= 0 {
		o.DPoPReplayCacheSize = DefaultDPoPReplayCacheSize
	}
	if issuer == "" || audience == "" {
		return nil, errors.New("new verifier: issuer and audience are required")
	}
	publicURL, err := checkPublicURL(o.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("new verifier: %w", err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	v := &Verifier{issuer: issuer, audience: audience, leeway: o.Leeway, maxLifetime: o.MaxLifetime, now: o.Now, stop: stop,
		keys:      newKeySet(bg, jwksURL, o.HTTPClient, o.MinRefetchInterval, o.Now),
		publicURL: publicURL, replays: dpop.NewReplayCache(o.DPoPReplayCacheSize)}
	if err := v.keys.refetch(ctx, true); err != nil {
		stop()
		return nil, fmt.Errorf("new verifier: %w", err)
	}
	if o.RefreshInterval > 0 {
		go v.keys.refreshEvery(bg, ctx, o.RefreshInterval)
	} else {
		context.AfterFunc(ctx, stop)
	}
	return v, nil
}

// Close stops the background refresh.
func (v *Verifier) Close() { v.stop() }

type header struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

type payload struct {
	Iss      string   `json:"iss"`
	Aud      audience `json:"aud"`
	Sub      string   `json:"sub"`
	Sid      string   `json:"sid"`
	Iat      numeric  `json:"iat"` // 0 when absent, as for the others
	Exp      numeric  `json:"exp"`
	Nbf      numeric  `json:"nbf"`
	Jti      string   `json:"jti"`
	AuthTime numeric  `json:"auth_time"`
	AMR      []string `json:"amr"`
	Cnf      *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// audience is RFC 7519's "aud": one string or an array of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// numeric is a NumericDate: seconds since the epoch, possibly fractional.
type numeric float64

func (n numeric) time() time.Time {
	sec, frac := math.Modf(float64(n))
	return time.Unix(int64(sec), int64(frac*1e9))
}

// Bounds on a token and its segments (base64url lengths), checked before
// anything is decoded: they bound the work spent on a token before its
// signature is known good. sessiond's header is about 100 characters and its
// claims a few hundred.
const (
	maxTokenLen   = 8192
	maxHeaderLen  = 1024
	maxPayloadLen = maxTokenLen - maxHeaderLen
)

// sigLen is the base64url length of an Ed25519 signature: the only length
// a signature segment may have.
var sigLen = base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize)

// maxNumericDate bounds exp, iat and nbf (the year 9999), so that converting
// one to a time.Time cannot overflow.
const maxNumericDate = 253402300799

// maxJKTLen bounds cnf.jkt: a SHA-256 thumbprint is 43 characters.
const maxJKTLen = 128

// Verify checks token and returns its claims, or a *VerifyError saying why
// not. It sees the token alone, so it refuses a DPoP-bound one (ErrDPoP):
// that is good only with a proof by its key, which VerifyRequest checks.
// It needs the network only when the kid is unknown: then it refetches
// the JWKS (rate-limited, shared with concurrent callers) within ctx.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	c, err := v.verifyToken(ctx, token)
	if err == nil && c.Bound() {
		return nil, refuse(ErrDPoP, "the token is DPoP-bound: it needs its proof (VerifyRequest)")
	}
	return c, err
}

// verifyToken is Verify without the refusal of bound tokens, for
// VerifyRequest, which checks their proofs.
func (v *Verifier) verifyToken(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenLen {
		return nil, refuse(ErrMalformed, "token too long")
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, refuse(ErrMalformed, "not a compact JWS")
	}
	// Every length is checked before its segment is decoded: a decoder
	// writing into a fixed buffer must never see more than fits.
	switch {
	case len(h64) > maxHeaderLen:
		return nil, refuse(ErrMalformed, "header too long")
	case len(p64) > maxPayloadLen:
		return nil, refuse(ErrMalformed, "claims too long")
	}
	kid, known := "", false
	if k, ok := v.headers.Load(h64); ok {
		kid, known = k.(string), true
	} else {
		var err error
		if kid, err = checkHeader(h64); err != nil {
			return nil, err
		}
	}
	// Before the kid is looked up, so that a malformed token cannot cause a
	// JWKS refetch either.
	var sig [ed25519.SignatureSize]byte
	if len(s64) != sigLen || base64.RawURLEncoding.DecodedLen(len(s64)) != len(sig) {
		return nil, refuse(ErrMalformed, "signature encoding")
	}
	key, err := v.keys.lookup(ctx, kid)
	if err != nil {
		return nil, err
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(sig[:], []byte(s64)); err != nil || n != len(sig) {
		return nil, refuse(ErrMalformed, "signature encoding")
	}
	if !ed25519.Verify(key, []byte(token[:len(h64)+1+len(p64)]), sig[:]) {
		return nil, refuse(ErrSignature, "")
	}
	if !known && v.nHeaders.Add(1) <= maxHeaders {
		v.headers.Store(h64, kid)
	}
	var p payload
	if err := decodeSegment(p64, &p); err != nil {
		return nil, refuse(ErrMalformed, "claims: "+err.Error())
	}
	return v.check(&p, kid)
}

// checkHeader decodes a JOSE header and returns its kid if it is one of an
// access token sessiond signs.
func checkHeader(h64 string) (kid string, err error) {
	var h header
	if err := decodeSegment(h64, &h); err != nil {
		return "", refuse(ErrMalformed, "header: "+err.Error())
	}
	// The algorithm is pinned: the key type alone decides how to verify,
	// so "none" or an HMAC keyed with the public key cannot get through.
	if h.Alg != "EdDSA" {
		return "", refuse(ErrAlgorithm, fmt.Sprintf("alg %q", h.Alg))
	}
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return "", refuse(ErrType, fmt.Sprintf("typ %q, want at+jwt", h.Typ))
	}
	if h.Crit != nil {
		return "", refuse(ErrMalformed, "unsupported crit header")
	}
	if h.Kid == "" {
		return "", refuse(ErrUnknownKey, "no kid")
	}
	return h.Kid, nil
}

func (v *Verifier) check(p *payload, kid string) (*Claims, error) {
	switch {
	case p.Exp == 0:
		return nil, refuse(ErrMissingClaim, "exp")
	case p.Iat == 0:
		return nil, refuse(ErrMissingClaim, "iat")
	case p.Sub == "":
		return nil, refuse(ErrMissingClaim, "sub")
	case p.Sid == "":
		return nil, refuse(ErrMissingClaim, "sid")
	}
	for _, n := range []numeric{p.Exp, p.Iat, p.Nbf, p.AuthTime} {
		if n < 0 || n > maxNumericDate {
			return nil, refuse(ErrMalformed, "date out of range")
		}
	}
	// Compared as numbers, before any conversion: exp and iat both come
	// from the issuer's clock, so no leeway applies.
	if float64(p.Exp)-float64(p.Iat) > v.maxLifetime.Seconds() {
		return nil, refuse(ErrLifetime, fmt.Sprintf("exp - iat = %.0fs, more than %v", float64(p.Exp)-float64(p.Iat), v.maxLifetime))
	}
	if p.Iss != v.issuer {
		return nil, refuse(ErrIssuer, fmt.Sprintf("%q", p.Iss))
	}
	found := false
	for _, a := range p.Aud {
		found = found || a == v.audience
	}
	if !found {
		return nil, refuse(ErrAudience, fmt.Sprintf("%q", []string(p.Aud)))
	}
	// A confirmation this verifier cannot check must not be dropped, or
	// the token would pass for an unbound one.
	if p.Cnf != nil && (p.Cnf.JKT == "" || len(p.Cnf.JKT) > maxJKTLen) {
		return nil, refuse(ErrMalformed, "cnf without a jkt thumbprint")
	}
	now := v.now()
	c := &Claims{UserID: p.Sub, SessionID: p.Sid, Issuer: p.Iss, Audience: p.Aud,
		IssuedAt: p.Iat.time(), ExpiresAt: p.Exp.time(), ID: p.Jti, KeyID: kid, AMR: p.AMR}
	if p.Cnf != nil {
		c.JKT = p.Cnf.JKT
	}
	if p.AuthTime != 0 {
		c.AuthTime = p.AuthTime.time()
	}
	if !now.Before(c.ExpiresAt.Add(v.leeway)) {
		return nil, refuse(ErrExpired, "at "+c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if p.Nbf != 0 {
		c.NotBefore = p.Nbf.time()
		if now.Add(v.leeway).Before(c.NotBefore) {
			return nil, refuse(ErrNotYetValid, "nbf "+c.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	if now.Add(v.leeway).Before(c.IssuedAt) {
		return nil, refuse(ErrNotYetValid, "issued in the future")
	}
	return c, nil
}

// decodeSegment decodes one base64url JSON segment into v, strictly.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return errors.New("not base64url")
	}
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(b, v)
}
