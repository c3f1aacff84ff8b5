package sessiond

import (
	"context"
	"time"
)

// Account token kinds: what a one-time link in a mail is for.
const (
	TokenVerifyEmail   = "verify_email"
	TokenResetPassword = "reset_password"
)

// AccountToken is a one-time token that a link in a mail carries. Only its
// SHA-256 is stored, so a database dump yields no usable link. A token is
// good once, until ExpiresAt, and only while it is the newest of its kind
// for its user: a newer one replaces it.
type AccountToken struct {
	Hash   []byte // SHA-256 of the token
	Kind   string // TokenVerifyEmail or TokenResetPassword
	UserID string
	// Email is the address the mail went to: a token is void once the
	// user's address is another.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until consumed
}

// AccountService is the account flows of the public API that mail a link:
// password reset and email verification. Implemented by package auth.
type AccountService interface {
	// ForgotPassword mails a reset link to email if an account has it. It
	// answers the same, after the same work, whether or not one does, and
	// when the address's mail limit suppresses the mail; CodeRateLimited
	// only for c's IP over its limit.
	ForgotPassword(ctx context.Context, email string, c ClientInfo) error
	// ResetPassword sets the password of the reset token's user and ends
	// every session of theirs. CodeInvalidLink, CodeWeakPassword.
	ResetPassword(ctx context.Context, token, newPassword string, c ClientInfo) error
	// VerifyEmail marks the address of the verification token's user
	// confirmed. CodeInvalidLink.
	VerifyEmail(ctx context.Context, token string, c ClientInfo) error
	// ResendVerification mails the principal's user a new verification
	// link (nothing if the address is confirmed already, or the address's
	// mail limit is reached). CodeRateLimited for c's IP.
	ResendVerification(ctx context.Context, p *Principal, c ClientInfo) error
}
