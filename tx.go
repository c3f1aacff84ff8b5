package sessiond

import (
	"context"
	"time"
)

// A unit of work.
//
// A use case (package auth) that changes state runs its steps in one store
// transaction: Store.Tx hands it a Tx, and the change, the event that
// records it and the outbox rows the event causes commit or roll back
// together. The algorithm (the session cap, refresh-token verdicts, who a
// logout ends) is written once, in auth, on top of Tx; each store
// implements Tx as named statements in its own SQL dialect, row scanning and
// error translation, and nothing else.
//
// A Tx carries no clock: the use case reads its clock once and passes that
// instant into every statement of the transaction, so that a session's
// stamps, the eviction decision and the event's occurred_at are the same
// microsecond.

// TxFunc is the body of a transaction. It may run more than once: a store
// runs the whole transaction again when the database aborted it for a
// conflict that a second attempt resolves (a PostgreSQL deadlock or
// serialization failure). It must therefore only set its results, never
// act on them, before Tx returns nil.
type TxFunc func(tx Tx) error

// Tx is one open store transaction. Its methods are bound to the context
// Store.Tx was called with. Errors are *Error values with the codes each
// method names, or a driver error that Store.Tx translates.
type Tx interface {
	// LockUser reads user id and holds it against concurrent logins and
	// changes of the user until the transaction ends, so that counting the
	// user's sessions and inserting one is atomic (invariant 1), and a
	// disable cannot miss a session being created. CodeNotFound.
	LockUser(id string) (*User, error)
	// InsertUser stores u. CodeEmailTaken.
	InsertUser(u *User) error
	// SetPasswordHash replaces the user's password hash.
	SetPasswordHash(userID, hash string) error
	// SetUserFlags stores u.Disabled and u.EmailVerified.
	SetUserFlags(u *User) error
	// SetEmail changes the user's address to email, confirmed or not.
	// CodeEmailTaken if another user has it.
	SetEmail(userID, email string, verified bool) error
	// DeleteUser deletes the user and, with it, everything of theirs.
	// CodeNotFound.
	DeleteUser(id string) error

	// SessionsForEviction returns the user's sessions with ID, CreatedAt,
	// LastUsedAt and ExpiresAt set (what Evictions needs), locked where
	// the store needs a lock for a concurrent refresh to be seen.
	SessionsForEviction(userID string) ([]Session, error)
	// InsertSession stores s. CodeNotFound if its user is gone.
	InsertSession(s *Session) error
	// DeleteSessions deletes the sessions ids and returns those it deleted.
	DeleteSessions(ids []string) ([]string, error)
	// SessionByID returns session id; nil if there is none.
	SessionByID(id string) (*Session, error)
	// RotateIfUnchanged advances s to the next generation, whose hash is
	// next, and stamps it with now, if the row is still as s was read
	// (same generation and current hash). nil if it was not.
	RotateIfUnchanged(s *Session, next []byte, now time.Time) (*Session, error)
	// StampIfUnchanged sets LastUsedAt to now (never backwards) if the row
	// is still as s was read. nil if it was not.
	StampIfUnchanged(s *Session, now time.Time) (*Session, error)
	// DeleteIfUnchanged deletes s if the row is still as it was read (same
	// generation, current hash and last use) and reports whether it did.
	DeleteIfUnchanged(s *Session) (bool, error)
	// DeleteUserSession deletes the user's session id and reports whether
	// there was one.
	DeleteUserSession(userID, id string) (bool, error)
	// DeleteUserSessions deletes every session of the user and returns
	// their ids.
	DeleteUserSessions(userID string) ([]string, error)

	// InsertEvent stores e. CodeInvalidRequest if its id is taken.
	InsertEvent(e *Event) error
	// WebhookSubscribers returns the ids of the webhook endpoints
	// subscribed to events of type eventType, or to every type ("*").
	WebhookSubscribers(eventType string) ([]string, error)
	// InsertOutbox stores msgs as pending, with no attempts.
	// CodeInvalidRequest for a second message of one channel, target and
	// event.
	InsertOutbox(msgs ...*OutboxMessage) error

	// InsertAccountToken stores t and deletes every unused token of the
	// same kind and user, which the new one supersedes.
	InsertAccountToken(t *AccountToken) error
	// ConsumeAccountToken marks the token of that kind whose hash is hash
	// used at now and returns it, in one statement, so that of concurrent
	// consumers exactly one gets it; nil if there is no such token, or it
	// is used, superseded or expired at now.
	ConsumeAccountToken(kind string, hash []byte, now time.Time) (*AccountToken, error)
	// DeleteAccountTokens deletes every unused token of that kind of the
	// user, as a password change does to reset links.
	DeleteAccountTokens(userID, kind string) error
	// DeleteUserMail deletes every mail outbox row to address, or caused
	// by an event of the user, whatever its status: their bodies hold
	// tokens and addresses of an account that is going away.
	DeleteUserMail(userID, address string) (int, error)

	// TOTPFactor returns the user's TOTP factor, pending or confirmed;
	// nil if there is none.
	TOTPFactor(userID string) (*TOTPFactor, error)
	// PutPendingTOTP stores f as the user's pending enrolment, replacing
	// a pending one; it never touches a confirmed factor, and reports
	// whether it stored f (false: the user's TOTP is on). CodeNotFound if
	// the user is gone.
	PutPendingTOTP(f *TOTPFactor) (bool, error)
	// ConfirmTOTP confirms the user's pending factor at now with the code
	// of step, if it is still pending and still the one whose secret is
	// secret (as stored); reports whether it did.
	ConfirmTOTP(userID string, secret []byte, step int64, now time.Time) (bool, error)
	// UseTOTPStep records step as the last one a code of the user's
	// confirmed factor was accepted for, if it is later than the one
	// recorded, in one conditional statement: of two uses of one code,
	// however concurrent, exactly one is told true.
	UseTOTPStep(userID string, step int64) (bool, error)
	// DeleteTOTP deletes the user's TOTP factor and recovery codes, and
	// reports whether there was a factor.
	DeleteTOTP(userID string) (bool, error)

	// ReplaceRecoveryCodes deletes the user's recovery codes and stores
	// hashes as the new set.
	ReplaceRecoveryCodes(userID string, hashes [][]byte, now time.Time) error
	// RecoveryCodes returns the hashes of the user's unused recovery codes.
	RecoveryCodes(userID string) ([][]byte, error)
	// UseRecoveryCode marks the user's unused code hash used at now, in
	// one conditional statement, and reports whether it did.
	UseRecoveryCode(userID string, hash []byte, now time.Time) (bool, error)

	// InsertMFAChallenge stores c.
	InsertMFAChallenge(c *MFAChallenge) error
	// MFAChallenge returns the challenge whose hash is hash if it is
	// unexpired at now and has attempts left; nil otherwise.
	MFAChallenge(hash []byte, now time.Time) (*MFAChallenge, error)
	// SpendMFAAttempt counts one attempt on that challenge, if it is
	// unexpired at now and has fewer than max, and returns it as counted;
	// nil otherwise. One statement, so that concurrent attempts never
	// exceed max.
	SpendMFAAttempt(hash []byte, now time.Time, max int) (*MFAChallenge, error)
	// DeleteMFAChallenge deletes the challenge and reports whether it was
	// there: a login finishes only if it deleted it.
	DeleteMFAChallenge(hash []byte) (bool, error)
	// SetSessionAuth sets the user's session's amr and auth time, as a
	// step-up does; false if there is no such session.
	SetSessionAuth(userID, sessionID string, amr []string, at time.Time) (bool, error)

	// PasskeyTx is the passkey statements (passkey.go).
	PasskeyTx
}

// TxStore runs units of work.
type TxStore interface {
	// Tx begins a transaction, runs fn in it and commits if fn returns
	// nil; otherwise, or if anything fails, nothing fn did remains. It
	// returns fn's error as it is when that is an *Error, and otherwise a
	// translated one (CodeUnavailable, CodeInternal).
	Tx(ctx context.Context, fn TxFunc) error
}
