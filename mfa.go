package sessiond

import (
	"context"
	"time"
)

// TOTPFactor is a user's TOTP second factor. It is pending from enrolment
// until a first code confirms it; only a confirmed one is asked for at
// login.
type TOTPFactor struct {
	UserID string
	// Secret is the RFC 6238 secret as stored: sealed under the encryption
	// key when one is configured (package auth seals and opens it).
	Secret    []byte
	CreatedAt time.Time
	// ConfirmedAt is zero while the enrolment is pending.
	ConfirmedAt time.Time
	// LastStep is the last time step a code was accepted for; a code of
	// that step or an earlier one is a replay.
	LastStep int64
}

// SecretKindTOTP is a TOTP factor's secret, as StoredSecret names it; Name
// is the user id. A pending enrolment's secret is one too.
const SecretKindTOTP = "totp"

// TOTPSecretContext is what a user's TOTP secret is sealed for: that
// user's factor, so that a sealed secret copied into another user's row
// does not open there.
func TOTPSecretContext(userID string) string { return SecretKindTOTP + "/" + userID }

// Active reports whether f is a confirmed second factor.
func (f *TOTPFactor) Active() bool { return f != nil && !f.ConfirmedAt.IsZero() }

// MFAChallenge is a login whose password checked out and whose second
// factor is still owed: the row behind an mfa_token. Only the token's
// SHA-256 is stored, so any instance can finish the login and a dump
// yields no usable token.
type MFAChallenge struct {
	Hash      []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Attempts counts the codes tried with it, the one in progress
	// included.
	Attempts int
}

// Second factors at login.
const (
	// MFAChallengeTTL is how long an mfa_token can finish its login.
	MFAChallengeTTL = 5 * time.Minute
	// MFAChallengeAttempts is how many codes one mfa_token may try.
	MFAChallengeAttempts = 5
)

// Second-factor methods, as the mfa_required problem's methods lists them.
const (
	MFAMethodTOTP         = "totp"
	MFAMethodRecoveryCode = "recovery_code"
	MFAMethodPasskey      = "passkey"
)

// TOTPEnrollment is what begins a TOTP enrolment: the secret for an
// authenticator app, as text, as an otpauth:// URL, and as a QR code (PNG).
type TOTPEnrollment struct {
	Secret string
	URL    string
	QRCode []byte
}

// SecondFactor is a proof a person presents: a TOTP code, a recovery
// code, or a passkey's assertion (Credential, what
// PublicKeyCredential.toJSON() returned) for the challenge ChallengeID;
// exactly one of them set.
type SecondFactor struct {
	Code         string
	RecoveryCode string
	ChallengeID  string
	Credential   []byte
}

// Passkey reports whether f is a passkey's assertion.
func (f SecondFactor) Passkey() bool { return f.ChallengeID != "" || len(f.Credential) > 0 }

// MFAStatus is what a user has set up of second factors.
type MFAStatus struct {
	TOTP              bool // confirmed: logins ask for a second factor
	RecoveryCodesLeft int  // unused recovery codes
}

// MFAService is the second-factor use cases of the public API, implemented
// by package auth. Enrolment and changes need a recent sign-in
// (CodeReauthRequired); wrong codes are CodeInvalidCredentials and count
// toward the login throttle (CodeTooManyAttempts).
type MFAService interface {
	// MFAStatus says what the principal's user has set up.
	MFAStatus(ctx context.Context, p *Principal) (*MFAStatus, error)
	// BeginTOTP starts (or restarts) the principal's TOTP enrolment.
	// CodeReauthRequired; CodeInvalidRequest if TOTP is on already.
	BeginTOTP(ctx context.Context, p *Principal, c ClientInfo) (*TOTPEnrollment, error)
	// ConfirmTOTP turns TOTP on with a first code and returns the
	// recovery codes, shown this once. CodeInvalidRequest if nothing is
	// pending, CodeInvalidCredentials for a wrong code.
	ConfirmTOTP(ctx context.Context, p *Principal, code string, c ClientInfo) ([]string, error)
	// DisableTOTP turns TOTP off and voids the recovery codes. It needs a
	// recent sign-in and a second factor: the session's, or f.
	// CodeReauthRequired, CodeNotFound if TOTP is off.
	DisableTOTP(ctx context.Context, p *Principal, f SecondFactor, c ClientInfo) error
	// RegenerateRecoveryCodes replaces the recovery codes; same conditions
	// as DisableTOTP.
	RegenerateRecoveryCodes(ctx context.Context, p *Principal, f SecondFactor, c ClientInfo) ([]string, error)
	// LoginMFA finishes a login that answered CodeMFARequired, with a code
	// or with a passkey's assertion for a challenge that
	// PasskeyService.BeginPasskeyLogin began with the mfa_token.
	// CodeInvalidToken for an unknown, used, expired or exhausted mfa_token,
	// CodeInvalidCredentials for a wrong code or passkey,
	// CodeTooManyAttempts, CodeAccountDisabled.
	LoginMFA(ctx context.Context, mfaToken string, f SecondFactor, c ClientInfo) (*Tokens, error)
	// StepUp proves the principal's second factor again: the session's
	// auth time becomes now and its amr gains "otp", or for a passkey's
	// assertion (a challenge of PasskeyService.BeginPasskeyReauth) "hwk"
	// or "swk". CodeInvalidCredentials, CodeNotFound if TOTP is off (for
	// a code) or passkeys are (for an assertion).
	StepUp(ctx context.Context, p *Principal, f SecondFactor, c ClientInfo) error
}
