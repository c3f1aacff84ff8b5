package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
)

// Account flows that mail a one-time link: password reset and email
// verification. A flow writes the token (hashed), the event and the mail's
// outbox row in the transaction of what caused them, so a mail exists
// exactly when its token does; the outbox worker sends it afterwards.

// Defaults of Accounts.
const (
	DefaultResetTTL            = 30 * time.Minute
	DefaultVerifyTTL           = 24 * time.Hour
	DefaultMailsPerHour        = 10
	DefaultMailBurst           = 3
	DefaultMailRequestsPerHour = 30
	// mailBurstWindow is the window of the burst limit: at most MailBurst
	// mails to one address in it, and MailsPerHour in the hour.
	mailBurstWindow = 5 * time.Minute
)

// The mails of AccountMail.Kind that carry no token: notices.
const (
	// MailPasswordChanged tells the owner that their password changed.
	MailPasswordChanged = "password_changed"
	// MailEmailChanged tells the current address that a change to NewEmail
	// was asked for.
	MailEmailChanged = "email_changed"
	// MailAccountExists answers a signup with an address that has an
	// account already.
	MailAccountExists = "account_exists"
)

// AccountMail is a mail an account flow sends: what the mail's outbox row
// must say. Kind is the token's kind (sessiond.TokenVerifyEmail,
// sessiond.TokenResetPassword, sessiond.TokenChangeEmail), which names
// the mail too, or one of the notices (MailPasswordChanged, ...).
type AccountMail struct {
	Kind      string
	To        string
	Token     string
	ExpiresAt time.Time
	// NewEmail is the address an email change goes to (MailEmailChanged:
	// partly masked already).
	NewEmail string
	// At is when the change a notice reports happened.
	At time.Time
}

// Accounts configures the account flows.
type Accounts struct {
	// ResetTTL and VerifyTTL are the lifetimes of reset and verification
	// links; zero means the defaults.
	ResetTTL, VerifyTTL time.Duration
	// Mail makes the outbox row that sends m, caused by event eventID, at
	// now (package mail's NewOutboxMessage, adapted by the wiring). Nil:
	// signup mails nothing and the flows that mail fail.
	Mail func(m AccountMail, eventID string, now time.Time) (*sessiond.OutboxMessage, error)
	// MailsPerHour and MailBurst limit the mail to one address (MailBurst
	// within a few minutes); a request whose mail they suppress answers
	// as if it were sent. MailRequestsPerHour limits the requests that
	// cause mail per client IP, refused with CodeRateLimited. Zero means
	// the defaults.
	MailsPerHour, MailBurst, MailRequestsPerHour int
}

func (a Accounts) withDefaults() Accounts {
	if a.ResetTTL <= 0 {
		a.ResetTTL = DefaultResetTTL
	}
	if a.VerifyTTL <= 0 {
		a.VerifyTTL = DefaultVerifyTTL
	}
	if a.MailsPerHour <= 0 {
		a.MailsPerHour = DefaultMailsPerHour
	}
	if a.MailBurst <= 0 {
		a.MailBurst = DefaultMailBurst
	}
	if a.MailRequestsPerHour <= 0 {
		a.MailRequestsPerHour = DefaultMailRequestsPerHour
	}
	return a
}

var _ sessiond.AccountService = (*Service)(nil)

var errNoMailComposer = errors.New("no mail composer configured")

var errInvalidLink = sessiond.Errorf(sessiond.CodeInvalidLink, "this link is invalid, used, superseded or expired; ask for a new one")

// accountTokenLen is the length of a token: 32 random bytes, unpadded
// base64url.
const accountTokenLen = 43

// newAccountToken is a fresh token (256 random bits) and its hash, the only
// form stored.
func newAccountToken() (tok string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	tok = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(tok))
	return tok, h[:]
}

// accountTokenHash is the hash a presented token is looked up by; false if
// it cannot be a token, which then costs no database work.
func accountTokenHash(tok string) ([]byte, bool) {
	if len(tok) != accountTokenLen {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(tok); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(tok))
	return h[:], true
}

// mailIPLimits is the per-client-IP limit of requests that cause mail.
func (s *Service) mailIPLimits(ip string) []sessiond.AttemptLimit {
	if ip == "" {
		return nil
	}
	return []sessiond.AttemptLimit{{Key: s.counterKey("mailip", clientKey(ip)), Max: s.accounts.MailRequestsPerHour, Window: time.Hour}}
}

// reserveMailIP refuses a client over its limit of mail-causing requests.
func (s *Service) reserveMailIP(ctx context.Context, ip string) error {
	_, err := s.reserve(ctx, s.mailIPLimits(ip), sessiond.CodeRateLimited, "too many requests from this address; try again later")
	return err
}

// reserveMail reserves one mail to address (a burst limit and an hourly
// one) and reports whether it may be sent. A refusal is no error: the
// caller answers as if the mail went, so the limit says nothing about
// whether an account has the address.
func (s *Service) reserveMail(ctx context.Context, address string) (bool, error) {
	limits := []sessiond.AttemptLimit{
		{Key: s.counterKey("mailburst", address), Max: s.accounts.MailBurst, Window: mailBurstWindow},
		{Key: s.counterKey("mailhour", address), Max: s.accounts.MailsPerHour, Window: time.Hour},
	}
	_, err := s.reserve(ctx, limits, sessiond.CodeRateLimited, "mail limit")
	if sessiond.ErrorCode(err) == sessiond.CodeRateLimited {
		return false, nil
	}
	return err == nil, err
}

// mailToken writes, in tx, a token of kind for u's address (superseding
// u's older ones of the kind), the event eventType, and the outbox row of
// the mail that carries the token.
func (s *Service) mailToken(tx sessiond.Tx, now time.Time, o Origin, u *sessiond.User, kind, eventType string) error {
	if s.accounts.Mail == nil {
		return sessiond.Internal("account mail", errNoMailComposer)
	}
	ttl := s.accounts.ResetTTL
	if kind != sessiond.TokenResetPassword {
		ttl = s.accounts.VerifyTTL
	}
	tok, hash := newAccountToken()
	t := &sessiond.AccountToken{Hash: hash, Kind: kind, UserID: u.ID, Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := tx.InsertAccountToken(t); err != nil {
		return err
	}
	id, err := recordID(tx, now, o.event(eventType, u.ID, "", nil))
	if err != nil {
		return err
	}
	msg, err := s.accounts.Mail(AccountMail{Kind: kind, To: u.Email, Token: tok, ExpiresAt: t.ExpiresAt}, id, now)
	if err != nil {
		return sessiond.Internal("compose account mail", err)
	}
	return tx.InsertOutbox(msg)
}

// mailNotice writes, in tx, the outbox row of the notice m, caused by the
// event eventID.
func (s *Service) mailNotice(tx sessiond.Tx, now time.Time, m AccountMail, eventID string) error {
	if s.accounts.Mail == nil {
		return nil
	}
	msg, err := s.accounts.Mail(m, eventID, now)
	if err != nil {
		return sessiond.Internal("compose account mail", err)
	}
	return tx.InsertOutbox(msg)
}

// padMailToken runs statements like mailToken's that change nothing (on a
// user id no one has, a token no one holds), so that a request that mails
// no one makes the same round trips to the database as one that does, and
// takes about as long.
func padMailToken(tx sessiond.Tx, now time.Time) error {
	_, hash := newAccountToken()
	if err := tx.DeleteAccountTokens(sessiond.NewID(), sessiond.TokenResetPassword); err != nil {
		return err
	}
	if _, err := tx.ConsumeAccountToken(sessiond.TokenResetPassword, hash, now); err != nil {
		return err
	}
	if _, err := tx.WebhookSubscribers(sessiond.EventPasswordResetRequested); err != nil {
		return err
	}
	return tx.DeleteAccountTokens(sessiond.NewID(), sessiond.TokenResetPassword)
}

// mailQueued wakes the outbox worker for a mail just committed.
func (s *Service) mailQueued() {
	if s.admin.notify != nil {
		s.admin.notify()
	}
}

// ForgotPassword mails a reset link if an account has email. Known and
// unknown addresses take the same steps: both count against the address's
// mail limit, look the user up, and run one transaction that locks the
// user (a fresh id, which matches no one, for an unknown address) and then
// makes as many statements, writing (mailToken) or not (padMailToken); the
// mail is sent later by the outbox worker, not in the request. Every
// request then waits out twice what requests of both kinds take (costEstimate).
func (s *Service) ForgotPassword(ctx context.Context, email string, c sessiond.ClientInfo) error {
	email = NormalizeEmail(email)
	if err := validateEmail(email); err != nil {
		return err
	}
	start := time.Now()
	if err := s.reserveMailIP(ctx, c.IP); err != nil {
		return err
	}
	send, err := s.reserveMail(ctx, email)
	if err != nil {
		return err
	}
	userID := sessiond.NewID()
	switch u, err := s.store.UserByEmail(ctx, email); {
	case err == nil:
		userID = u.ID
	case sessiond.ErrorCode(err) != sessiond.CodeNotFound:
		return err
	}
	now := s.now()
	sent := false
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		sent = false
		u, err := tx.LockUser(userID)
		switch {
		case sessiond.ErrorCode(err) == sessiond.CodeNotFound:
			return padMailToken(tx, now)
		case err != nil:
			return err
		case !send || u.Disabled:
			return padMailToken(tx, now)
		}
		if err := s.mailToken(tx, now, origin(c), u, sessiond.TokenResetPassword, sessiond.EventPasswordResetRequested); err != nil {
			return err
		}
		sent = true
		return nil
	})
	if err != nil {
		return err
	}
	// Every request's own work counts, of either kind: on a loaded
	// machine the kind that writes nothing can be the slower one (SQLite's
	// writer is busy with the mail the others queued), and twice the
	// median of both still outlasts nearly every request of each.
	s.forgotCost.observe(time.Since(start))
	if sent {
		s.mailQueued()
	}
	// Both kinds wait out the same estimate, so that each answers at
	// whichever is later, its own work or the estimate, and a late timer
	// on a loaded machine delays them alike.
	s.forgotCost.padFrom(ctx, start)
	return nil
}

// costEstimate is how long a request's own work takes — the median of the
// latest requests of either kind, which an outlier (a slow fsync, a GC
// pause) does not move — twice which every request waits out. Padding
// statements alone do not hide the difference: writing a token, an event
// and a mail row (and committing them) costs more than statements that
// change nothing, measurably so on SQLite, and the time would tell whether
// an address has an account.
type costEstimate struct {
	mu     sync.Mutex
	recent [31]time.Duration
	n      int // observations so far
}

// maxPad bounds the wait, so that requests slowed by something else (a
// stalled disk) do not make every padded request wait as long.
const maxPad = time.Second

func (c *costEstimate) observe(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recent[c.n%len(c.recent)] = d
	c.n++
}

func (c *costEstimate) median() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(c.n, len(c.recent))
	if n == 0 {
		return 0
	}
	sorted := slices.Clone(c.recent[:n])
	slices.Sort(sorted)
	return sorted[n/2]
}

// padFrom waits until the estimate has passed since start, or ctx ends.
func (c *costEstimate) padFrom(ctx context.Context, start time.Time) {
	// Twice the median: long enough that nearly every request, of
	// either kind, ends in this wait, so that a loaded machine's late
	// timers delay both kinds alike instead of only those that were quick.
	wait := time.Until(start.Add(min(2*c.median(), maxPad)))
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ResetPassword consumes a reset token and, in the same transaction, sets
// the new password, voids the user's other reset links and ends every
// session of theirs. The password is hashed before the transaction, which
// must not hold the user's lock for that long; a password that turns out
// too close to the user's address rolls the transaction back, token
// unspent.
func (s *Service) ResetPassword(ctx context.Context, tok, pw string, c sessiond.ClientInfo) error {
	hash, ok := accountTokenHash(tok)
	if !ok {
		return errInvalidLink
	}
	pw = normalizePassword(pw)
	if err := s.checkPassword(pw, ""); err != nil {
		return err
	}
	pwHash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return err
	}
	now := s.now()
	o := origin(c)
	return s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := s.consume(tx, sessiond.TokenResetPassword, hash, now)
		if err != nil {
			return err
		}
		if err := s.checkPassword(pw, u.Email); err != nil {
			return err
		}
		if err := tx.SetPasswordHash(u.ID, pwHash); err != nil {
			return err
		}
		if err := tx.DeleteAccountTokens(u.ID, sessiond.TokenResetPassword); err != nil {
			return err
		}
		if _, err := o.endAll(tx, now, u.ID, sessiond.EndPasswordReset); err != nil {
			return err
		}
		return record(tx, now, o.event(sessiond.EventPasswordReset, u.ID, "", nil))
	})
}

// consume spends the token of kind whose hash is hash and returns it and
// its user, locked; errInvalidLink if the token is unknown, used,
// superseded or expired, or the user's address is no longer the one it
// was made for.
func (s *Service) consume(tx sessiond.Tx, kind string, hash []byte, now time.Time) (*sessiond.User, error) {
	t, err := tx.ConsumeAccountToken(kind, hash, now)
	if err != nil {
		return nil, err
	}
	return s.tokenUser(tx, t)
}

// tokenUser is the user of the consumed token t, locked; errInvalidLink
// for no token, or one whose user is gone or has another address by now.
func (s *Service) tokenUser(tx sessiond.Tx, t *sessiond.AccountToken) (*sessiond.User, error) {
	if t == nil {
		return nil, errInvalidLink
	}
	u, err := tx.LockUser(t.UserID)
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return nil, errInvalidLink
	}
	if err != nil {
		return nil, err
	}
	if u.Email != t.Email {
		return nil, errInvalidLink
	}
	return u, nil
}

// VerifyEmail consumes a verification token and marks its user's address
// confirmed, or consumes an email change's token and makes its address
// the user's (confirmEmailChange). Both kinds come through the one page
// their mails link to, so the token is tried as either.
func (s *Service) VerifyEmail(ctx context.Context, tok string, c sessiond.ClientInfo) error {
	hash, ok := accountTokenHash(tok)
	if !ok {
		return errInvalidLink
	}
	now := s.now()
	o := origin(c)
	return s.store.Tx(ctx, func(tx sessiond.Tx) error {
		t, err := tx.ConsumeAccountToken(sessiond.TokenVerifyEmail, hash, now)
		if err != nil {
			return err
		}
		if t == nil {
			if t, err = tx.ConsumeAccountToken(sessiond.TokenChangeEmail, hash, now); err != nil {
				return err
			}
		}
		u, err := s.tokenUser(tx, t)
		if err != nil {
			return err
		}
		if t.Kind == sessiond.TokenChangeEmail {
			return confirmEmailChange(tx, now, o, u, t)
		}
		if u.EmailVerified {
			return nil
		}
		u.EmailVerified = true
		if err := tx.SetUserFlags(u); err != nil {
			return err
		}
		return record(tx, now, o.event(sessiond.EventEmailVerified, u.ID, "", nil))
	})
}

// ResendVerification mails the principal's user a new verification link,
// which supersedes the one before.
func (s *Service) ResendVerification(ctx context.Context, p *sessiond.Principal, c sessiond.ClientInfo) error {
	if err := s.reserveMailIP(ctx, c.IP); err != nil {
		return err
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if u.EmailVerified {
		return nil
	}
	send, err := s.reserveMail(ctx, u.Email)
	if err != nil || !send {
		return err
	}
	now := s.now()
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := tx.LockUser(p.UserID)
		if err != nil {
			return err
		}
		if u.EmailVerified {
			return nil
		}
		return s.mailToken(tx, now, origin(c), u, sessiond.TokenVerifyEmail, sessiond.EventEmailVerificationSent)
	})
	if err != nil {
		return err
	}
	s.mailQueued()
	return nil
}
