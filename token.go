package sessiond

import (
	"context"
	"time"
)

// Tokens is what a login or refresh hands the client (docs/API.md, "Token response").
type Tokens struct {
	IssuedAt         time.Time
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time // when the RT stops working if unused: the earlier of idle and absolute expiry
	SessionID        string
	// DeviceToken proves this login on this device to later logins with the
	// same email (see auth's package doc); it expires at DeviceExpiresAt.
	DeviceToken     string
	DeviceExpiresAt time.Time
	// DPoPJKT is the thumbprint of the key the session is bound to; the
	// access token is then a DPoP token, not a bearer one. Empty otherwise.
	DPoPJKT string
}

// Principal is who a verified access token speaks for.
type Principal struct {
	UserID    string
	SessionID string
	ExpiresAt time.Time // of the access token
	// AuthTime is when the session's user last proved who they are
	// (login, second factor, reauthentication), read from the session
	// itself rather than the token, so that a reauthentication counts at
	// once. Sensitive changes need it recent.
	AuthTime time.Time
	// AMR is how the session's user proved who they are (RFC 8176
	// values), as the session holds it now: "otp" once a second factor
	// was given at login or since.
	AMR []string
}

// ClientInfo describes the device a login comes from, shown in session lists.
type ClientInfo struct {
	UserAgent string
	IP        string
	// DeviceToken is what an earlier login on this device returned as
	// Tokens.DeviceToken, if the client kept it; empty otherwise.
	DeviceToken string
	// DPoP is the proof the login carried, which binds the session it
	// opens to the proof's key.
	DPoP DPoPProof
}

// AuthService is the use cases behind the HTTP API, implemented by package auth.
type AuthService interface {
	// Signup creates a user. CodeInvalidEmail, CodeWeakPassword,
	// CodeEmailTaken, CodeRateLimited (too many signups from c's IP). When
	// addresses must be confirmed before login it returns a nil user and
	// a nil error for a new and a taken address alike, so that the answer
	// reveals nothing, and never CodeEmailTaken.
	Signup(ctx context.Context, email, password string, c ClientInfo) (*User, error)
	// Login checks credentials and creates a session, evicting beyond the
	// cap, bound to the key of c.DPoP's proof if there is one.
	// CodeInvalidDPoPProof (a proof that fails its checks or was used
	// before, or none where one is required; checked before the password),
	// CodeUseDPoPNonce (a server nonce is required),
	// CodeInvalidCredentials (one answer for unknown email and wrong password),
	// CodeTooManyAttempts (throttled before the password was checked),
	// CodeEmailNotVerified (addresses must be confirmed, and this one is
	// not; only after the password checked out),
	// CodeUnavailable.
	Login(ctx context.Context, email, password string, c ClientInfo) (*Tokens, error)
	// Refresh trades a refresh token for new tokens. A bound session needs
	// proof by its key. CodeInvalidRefreshToken, CodeRefreshTokenReused,
	// CodeSessionExpired; CodeInvalidDPoPProof and CodeUseDPoPNonce, which
	// leave the session as it was.
	Refresh(ctx context.Context, refreshToken string, proof DPoPProof) (*Tokens, error)
	// LogoutRefresh ends the session a refresh token belongs to; a bound
	// one only with proof by its key. CodeInvalidRefreshToken,
	// CodeInvalidDPoPProof, CodeUseDPoPNonce.
	LogoutRefresh(ctx context.Context, refreshToken string, proof DPoPProof) error
	// Authenticate verifies an access token and that its session is still
	// live. proof is nil when the token came with the Bearer scheme, which
	// only an unbound token may; with the DPoP scheme (RFC 9449 §7) the
	// token must be bound and the proof by its key and for it.
	// CodeInvalidToken, CodeInvalidDPoPProof, CodeUseDPoPNonce.
	Authenticate(ctx context.Context, accessToken string, proof *DPoPProof) (*Principal, error)
	// Logout ends the principal's session.
	Logout(ctx context.Context, p *Principal) error
	// Me returns the principal's user. CodeInvalidToken if the user is gone.
	Me(ctx context.Context, p *Principal) (*User, error)
	// Sessions returns the principal's user's live sessions, most recently
	// used first.
	Sessions(ctx context.Context, p *Principal) ([]Session, error)
	// RevokeSession ends one of the principal's user's sessions.
	// CodeNotFound for an unknown id or another user's session.
	RevokeSession(ctx context.Context, p *Principal, sessionID string) error
	// LogoutAll ends every session of the principal's user.
	LogoutAll(ctx context.Context, p *Principal) error
}
