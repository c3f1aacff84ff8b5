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
}

// ClientInfo describes the device a login comes from, shown in session lists.
type ClientInfo struct {
	UserAgent string
	IP        string
	// DeviceToken is what an earlier login on this device returned as
	// Tokens.DeviceToken, if the client kept it; empty otherwise.
	DeviceToken string
}

// AuthService is the use cases behind the HTTP API, implemented by package auth.
type AuthService interface {
	// Signup creates a user. CodeInvalidEmail, CodeWeakPassword,
	// CodeEmailTaken, CodeRateLimited (too many signups from c's IP). When
	// addresses must be confirmed before login it returns a nil user and
	// a nil error for a new and a taken address alike, so that the answer
	// reveals nothing, and never CodeEmailTaken.
	Signup(ctx context.Context, email, password string, c ClientInfo) (*User, error)
	// Login checks credentials and creates a session, evicting beyond the cap.
	// CodeInvalidCredentials (one answer for unknown email and wrong password),
	// CodeTooManyAttempts (throttled before the password was checked),
	// CodeEmailNotVerified (addresses must be confirmed, and this one is
	// not; only after the password checked out),
	// CodeUnavailable.
	Login(ctx context.Context, email, password string, c ClientInfo) (*Tokens, error)
	// Refresh trades a refresh token for new tokens. CodeInvalidRefreshToken,
	// CodeRefreshTokenReused, CodeSessionExpired.
	Refresh(ctx context.Context, refreshToken string) (*Tokens, error)
	// LogoutRefresh ends the session a refresh token belongs to. CodeInvalidRefreshToken.
	LogoutRefresh(ctx context.Context, refreshToken string) error
	// Authenticate verifies an access token and that its session is still
	// live. CodeInvalidToken.
	Authenticate(ctx context.Context, accessToken string) (*Principal, error)
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
