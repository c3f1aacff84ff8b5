package sessiond

import (
	"errors"
	"fmt"
	"time"
)

// Error codes: the stable, machine-readable `code` of every problem response
// (docs/API.md, "Errors"). Package httpapi maps each to an HTTP status in one table.
const (
	CodeInvalidRequest      = "invalid_request"
	CodeInvalidCredentials  = "invalid_credentials"
	CodeInvalidToken        = "invalid_token"
	CodeInvalidRefreshToken = "invalid_refresh_token"
	CodeRefreshTokenReused  = "refresh_token_reused"
	CodeSessionExpired      = "session_expired"
	CodeNotFound            = "not_found"
	CodeEmailTaken          = "email_taken"
	CodeRequestTooLarge     = "request_too_large"
	CodeUnsupportedMedia    = "unsupported_media_type"
	CodeInvalidEmail        = "invalid_email"
	CodeWeakPassword        = "weak_password"
	CodeTooManyAttempts     = "too_many_attempts"
	CodeRateLimited         = "rate_limited"
	CodeUnavailable         = "unavailable"
	CodeInternal            = "internal"
	CodeAccountDisabled     = "account_disabled"
	CodeInvalidLink         = "invalid_link"
	CodeEmailNotVerified    = "email_not_verified"
	CodeMFARequired         = "mfa_required"
	CodeReauthRequired      = "reauthentication_required"
	// CodeInvalidDPoPProof: a DPoP proof is missing where the session or
	// token is bound, malformed, replayed, stale, or by another key.
	// CodeUseDPoPNonce: the proof lacks the server's current nonce, which
	// the answer's DPoP-Nonce header carries (RFC 9449 §8).
	CodeInvalidDPoPProof = "invalid_dpop_proof"
	CodeUseDPoPNonce     = "use_dpop_nonce"
)

// Error is the one error type that carries a code across package boundaries.
// Message is safe to show to a client; Err, the cause, is only logged.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when set, tells the client when to try again
	// (CodeUnavailable, CodeTooManyAttempts, CodeRateLimited).
	RetryAfter time.Duration
	// Extra holds the problem document's extension members (RFC 9457
	// §3.2), e.g. mfa_token and methods of CodeMFARequired; they never
	// replace the standard members.
	Extra map[string]any
	Err   error
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a database (or other dependency) failure. It is never a
// 401: a client told its token is bad would throw a valid token away.
func Unavailable(op string, err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the service is temporarily unavailable", Err: fmt.Errorf("%s: %w", op, err)}
}

// Internal wraps a failure that is a bug, not an outage: a permanent
// database error such as a constraint or syntax error. Retrying cannot help,
// so it is a 500, logged with its cause and shown as a generic problem.
func Internal(op string, err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("%s: %w", op, err)}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err, or a generic one.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}
