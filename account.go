package sessiond

import (
	"context"
	"time"
)

// Account token kinds: what a one-time link in a mail is for.
const (
	TokenVerifyEmail   = "verify_email"
	TokenResetPassword = "reset_password"
	// TokenChangeEmail confirms an email change: its mail goes to the new
	// address, which the token holds (AccountToken.NewEmail).
	TokenChangeEmail = "change_email"
)

// AccountToken is a one-time token that a link in a mail carries. Only its
// SHA-256 is stored, so a database dump yields no usable link. A token is
// good once, until ExpiresAt, and only while it is the newest of its kind
// for its user: a newer one replaces it.
type AccountToken struct {
	Hash   []byte // SHA-256 of the token
	Kind   string // TokenVerifyEmail, TokenResetPassword or TokenChangeEmail
	UserID string
	// Email is the user's address when the token was made (for every kind
	// but TokenChangeEmail, the address the mail went to): a token is void
	// once the user's address is another.
	Email string
	// NewEmail is the address a TokenChangeEmail changes to, where its
	// mail went; empty for the other kinds.
	NewEmail  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until consumed
}

// Reauth is the proof of a reauthentication: the password, (with a
// second factor) a current one-time code, or the assertion of one of the
// user's passkeys for a challenge of PasskeyService.BeginPasskeyReauth.
// Exactly one is given.
type Reauth struct {
	Password    string
	Code        string
	ChallengeID string
	Credential  []byte
}

// AccountService is the account flows of the public API: password reset
// and email verification, which mail a link, and the changes a signed-in
// user makes to their own account. Implemented by package auth.
//
// The changes that take the password check it like a login does, on the
// login throttle's counters (CodeInvalidCredentials,
// CodeTooManyAttempts), so a stolen access token cannot be used to guess
// it.
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
	// confirmed, or, for an email change's token, makes its new address
	// the user's, confirmed. CodeInvalidLink; CodeEmailTaken if another
	// account has the new address by now (the token stays unspent).
	VerifyEmail(ctx context.Context, token string, c ClientInfo) error
	// ResendVerification mails the principal's user a new verification
	// link (nothing if the address is confirmed already, or the address's
	// mail limit is reached). CodeRateLimited for c's IP.
	ResendVerification(ctx context.Context, p *Principal, c ClientInfo) error
	// ChangePassword sets the principal's user's password, given the
	// current one, and ends every other session of theirs; a notice goes to
	// the user's address. CodeInvalidCredentials, CodeTooManyAttempts,
	// CodeWeakPassword.
	ChangePassword(ctx context.Context, p *Principal, current, newPassword string, c ClientInfo) error
	// ChangeEmail mails a link that confirms newEmail to newEmail, and a
	// notice to the current address; the address changes when the link is
	// used (VerifyEmail). A newEmail another account has answers the same
	// and mails it nothing. CodeInvalidCredentials, CodeTooManyAttempts,
	// CodeInvalidEmail, CodeRateLimited for c's IP.
	ChangeEmail(ctx context.Context, p *Principal, password, newEmail string, c ClientInfo) error
	// DeleteAccount deletes the principal's user and everything of theirs,
	// given the password. CodeInvalidCredentials, CodeTooManyAttempts.
	DeleteAccount(ctx context.Context, p *Principal, password string, c ClientInfo) error
	// Reauthenticate stamps the principal's session with a fresh auth
	// time, given proof r. CodeInvalidRequest without a proof,
	// CodeInvalidCredentials, CodeTooManyAttempts.
	Reauthenticate(ctx context.Context, p *Principal, r Reauth, c ClientInfo) error
}
