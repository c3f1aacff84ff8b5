package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
)

// accessTokenType is the JWS "typ" of an access token (RFC 9068 §2.1); it
// keeps an ID token or any other JWT signed by the same key from being
// accepted as an access token.
const accessTokenType = "at+jwt"

// MaxAccessTokenSize bounds what Verify will parse. sessiond's own tokens are
// a few hundred bytes; anything far larger is refused before any decoding.
const MaxAccessTokenSize = 4096

// forbiddenHeaders name keys or extensions a token could use to pick its own
// verification key or change how it is processed. sessiond never sets them,
// so their presence alone is reason to refuse.
var forbiddenHeaders = []string{"jku", "x5u", "jwk", "x5c", "crit"}

// Claims are the verified contents of an access token.
type Claims struct {
	Issuer    string
	Subject   string // the user id ("sub")
	SessionID string // "sid"
	ID        string // "jti"
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// AMR lists how the user proved who they are (RFC 8176: "pwd", "otp",
	// "hwk", "ext"…); AuthTime is when they last did. Both are absent in
	// tokens of sessions that predate them.
	AMR      []string
	AuthTime time.Time
	// DPoPJKT is the "jkt" of the "cnf" claim (RFC 9449 §6.1): the
	// thumbprint of the key the token is bound to; empty for a bearer token.
	DPoPJKT string
}

// Subject is what an access token speaks for: a user's session, when it
// ends (no token outlives it), and how and when the user authenticated.
type Subject struct {
	UserID    string
	SessionID string
	NotAfter  time.Time // the session's absolute expiry
	AMR       []string
	AuthTime  time.Time // zero: no auth_time claim
	// DPoPJKT binds the token to a DPoP key: the token then carries
	// "cnf":{"jkt":DPoPJKT}. Empty: a bearer token, without cnf.
	DPoPJKT string
}

// Issuer signs access tokens with a Keyring's current key.
type Issuer struct {
	keys     *Keyring
	issuer   string
	audience string
	ttl      time.Duration
}

// NewIssuer returns an Issuer of tokens for audience from issuer, living ttl.
func NewIssuer(keys *Keyring, issuer, audience string, ttl time.Duration) *Issuer {
	return &Issuer{keys: keys, issuer: issuer, audience: audience, ttl: ttl}
}

// payload is the claims set as signed; the field order is the wire order.
type payload struct {
	Iss string `json:"iss"`
	Aud string `json:"aud"`
	Sub string `json:"sub"`
	Sid string `json:"sid"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
	// auth_time and amr are optional (RFC 9068 §2.2.1), so absent, not
	// zero, when unknown.
	AuthTime int64    `json:"auth_time,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	// cnf binds the token to a DPoP key (RFC 9449 §6.1); absent for a
	// bearer token.
	Cnf *confirmation `json:"cnf,omitempty"`
}

// confirmation is the "cnf" claim of a DPoP-bound token.
type confirmation struct {
	JKT string `json:"jkt"`
}

// Sign returns a compact JWS access token for the user's session, issued at
// now, and when it expires (whole seconds, as in the "exp" claim): the
// issuer's TTL after now, but never after notAfter, the session's absolute
// expiry, so that no token outlives the session it speaks for.
func (i *Issuer) Sign(userID, sessionID string, now, notAfter time.Time) (token string, expiresAt time.Time, err error) {
	return i.SignSubject(Subject{UserID: userID, SessionID: sessionID, NotAfter: notAfter}, now)
}

// SignSubject is Sign with the amr and auth_time claims of s.
func (i *Issuer) SignSubject(s Subject, now time.Time) (token string, expiresAt time.Time, err error) {
	userID, sessionID, notAfter := s.UserID, s.SessionID, s.NotAfter
	k := i.keys.current()
	if k == nil {
		return "", time.Time{}, internal("sign access token", errors.New("no signing key installed"))
	}
	if userID == "" || sessionID == "" {
		return "", time.Time{}, internal("sign access token", errors.New("empty user or session id"))
	}
	var jti [16]byte
	rand.Read(jti[:]) // never fails (crypto/rand, Go 1.24+)
	if notAfter.IsZero() {
		return "", time.Time{}, internal("sign access token", errors.New("no session expiry"))
	}
	// Unix rounds down, so a sub-second expiry still bounds exp.
	exp := min(now.Add(i.ttl).Unix(), notAfter.Unix())
	if !time.Unix(exp, 0).After(now) {
		// The session ends before a token could live a whole second.
		return "", time.Time{}, &sessiond.Error{Code: sessiond.CodeSessionExpired, Message: "the session has expired"}
	}
	claims, err := json.Marshal(payload{
		Iss: i.issuer, Aud: i.audience, Sub: userID, Sid: sessionID,
		Iat: now.Unix(), Exp: exp, Jti: base64.RawURLEncoding.EncodeToString(jti[:]),
		AuthTime: unixOrZero(s.AuthTime), AMR: s.AMR, Cnf: cnf(s.DPoPJKT),
	})
	if err != nil {
		return "", time.Time{}, internal("sign access token", fmt.Errorf("encode claims: %w", err))
	}
	enc := base64.RawURLEncoding
	n := len(k.header) + 1 + enc.EncodedLen(len(claims))
	b := make([]byte, n, n+1+enc.EncodedLen(ed25519.SignatureSize))
	copy(b, k.header)
	b[len(k.header)] = '.'
	enc.Encode(b[len(k.header)+1:], claims)
	sig := ed25519.Sign(k.private, b)
	b = append(b, '.')
	b = enc.AppendEncode(b, sig)
	return string(b), time.Unix(exp, 0).UTC(), nil
}

func cnf(jkt string) *confirmation {
	if jkt == "" {
		return nil
	}
	return &confirmation{JKT: jkt}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func internal(op string, err error) *sessiond.Error {
	return &sessiond.Error{Code: sessiond.CodeInternal, Message: "internal error", Err: fmt.Errorf("%s: %w", op, err)}
}

// Verifier checks access tokens offline against a Keyring.
type Verifier struct {
	keys        *Keyring
	parser      *jwt.Parser
	maxLifetime time.Duration
}

// NewVerifier returns a Verifier of tokens from issuer for audience, judged at
// clock's time with leeway for clock skew. It refuses tokens whose exp is
// more than the keyring's access TTL plus leeway after their iat: sessiond
// never signs one, so such a token was forged (with a key from a database
// dump, say), and the keyring would stop publishing its key before it
// expired anyway.
func NewVerifier(keys *Keyring, issuer, audience string, clock sessiond.Clock, leeway time.Duration) *Verifier {
	return &Verifier{
		keys:        keys,
		maxLifetime: keys.accessTTL + leeway,
		// The parser holds no per-call state, so one serves every goroutine.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{Algorithm}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(clock),
			// One token, one encoding: no padding, no stray low bits.
			jwt.WithStrictDecoding(),
		),
	}
}

// claims is what Verify decodes: just the registered claims and "sid".
type claims struct {
	jwt.RegisteredClaims
	SessionID string   `json:"sid"`
	AuthTime  *int64   `json:"auth_time"`
	AMR       []string `json:"amr"`
	Cnf       *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// headerError is a refusal by the keyfunc; its text is the client message.
type headerError string

func (e headerError) Error() string { return string(e) }

// Verify checks an access token offline and returns its claims. Every
// failure is a *sessiond.Error with CodeInvalidToken whose message says why.
//
// The algorithm is pinned to EdDSA (so "none" and HS256, even keyed with the
// public key, are refused); the header must have typ at+jwt and a published
// kid and no jku, x5u, jwk, x5c or crit; exp, iat, iss, aud, sub and sid must
// be present and right; exp must not have passed and nbf and iat must not be
// in the future, each give or take the leeway; and exp - iat must not exceed
// the access TTL plus the leeway.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if len(token) > MaxAccessTokenSize {
		return nil, invalidToken("token too large", nil)
	}
	var c claims
	parsed, err := v.parser.ParseWithClaims(token, &c, v.keyfunc)
	if err != nil {
		return nil, invalidToken(reason(parsed, &c, err), err)
	}
	switch {
	case c.Subject == "":
		return nil, invalidToken("missing sub claim", nil)
	case c.SessionID == "":
		return nil, invalidToken("missing sid claim", nil)
	case c.IssuedAt == nil:
		return nil, invalidToken("missing iat claim", nil)
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > v.maxLifetime:
		return nil, invalidToken("token lifetime too long", nil)
	case c.Cnf != nil && c.Cnf.JKT == "":
		// sessiond binds only by thumbprint: a cnf without one binds to
		// nothing this server could check.
		return nil, invalidToken("cnf claim without jkt", nil)
	}
	var jkt string
	if c.Cnf != nil {
		jkt = c.Cnf.JKT
	}
	return &Claims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		SessionID: c.SessionID,
		ID:        c.ID,
		Audience:  []string(c.Audience),
		IssuedAt:  c.IssuedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
		AMR:       c.AMR,
		AuthTime:  authTime(c.AuthTime),
		DPoPJKT:   jkt,
	}, nil
}

func authTime(t *int64) time.Time {
	if t == nil {
		return time.Time{}
	}
	return time.Unix(*t, 0).UTC()
}

// keyfunc checks the header and returns the public key its kid names.
func (v *Verifier) keyfunc(t *jwt.Token) (any, error) {
	for _, h := range forbiddenHeaders {
		if _, ok := t.Header[h]; ok {
			return nil, headerError("forbidden header " + h)
		}
	}
	// RFC 9068 §4 allows the full media type too; RFC 7515 §4.1.9 makes it
	// case-insensitive.
	typ, _ := t.Header["typ"].(string)
	if !strings.EqualFold(typ, accessTokenType) && !strings.EqualFold(typ, "application/"+accessTokenType) {
		return nil, headerError("wrong token type")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, headerError("missing key id")
	}
	k := v.keys.lookup(kid)
	if k == nil {
		return nil, headerError("unknown key id")
	}
	return k.public, nil
}

// reason turns a parse error into the message the client sees.
func reason(t *jwt.Token, c *claims, err error) string {
	var he headerError
	switch {
	case errors.As(err, &he):
		return string(he)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unsupported algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if t != nil && (t.Method == nil || t.Method.Alg() != Algorithm) {
			return "algorithm not allowed"
		}
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The library does not say which claim; the decoded claims do.
		switch {
		case c.ExpiresAt == nil:
			return "missing exp claim"
		case c.Issuer == "":
			return "missing iss claim"
		default:
			return "missing aud claim"
		}
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	default:
		return "invalid claims"
	}
}

func invalidToken(msg string, err error) *sessiond.Error {
	return &sessiond.Error{Code: sessiond.CodeInvalidToken, Message: msg, Err: err}
}
