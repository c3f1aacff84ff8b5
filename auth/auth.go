// Package auth holds sessiond's use cases: signup, login under the session
// cap, refresh with rotation, logout, and authenticating access tokens. It
// knows neither HTTP nor SQL: it validates input, hashes passwords (package
// password), mints tokens (package token), and runs each change as one unit
// of work: a store transaction (sessiond.Store.Tx) in which the algorithm,
// written once here for every store, applies the root package's rules
// through the store's named statements (sessiond.Tx) and records the
// change's event and its webhook deliveries (record, events.go), so that
// they commit or roll back together.
//
// Start at Service.Login and CreateSession (login.go); the cap itself is
// sessiond.Evictions. Refresh is RefreshSession (refresh.go), logouts are
// in sessions.go, and the flows that mail a one-time link (password reset,
// email verification) in account.go. Device-bound sessions (DPoP) are in
// dpop.go: the proof a login carries binds its session, and the same key's
// proofs are then checked on the row before any refresh verdict. The algorithms are exported so that package storetest
// proves them against every store.
//
// # Throttling (throttle.go)
//
// Every login reserves its attempt before the password is hashed, on
// counters in the database (sessiond.AttemptStore), so a refused attempt
// costs no hash and concurrent guesses cannot overrun a limit:
//
//   - per (email, client IP) pair: the hard limit, Throttle.MaxFailures
//     (OWASP Authentication Cheat Sheet). An attacker who exhausts it is
//     refused, but only at his IP: the owner logging in from elsewhere is
//     not, so guessing can no longer lock an owner out from everywhere.
//   - per email from every client together: a much higher ceiling,
//     Throttle.MaxAccountFailures, which holds an attacker spraying from
//     many IPs (NIST SP 800-63B 5.2.2: at most 100 failures per account).
//     A client presenting a device token is exempt from it.
//   - per client IP across all emails: Throttle.MaxIPFailures. Without it
//     one IP could try MaxFailures passwords on every email it knows
//     (credential stuffing); it is higher, as users behind one NAT share it.
//
// A reservation is held until the password has checked out, so one client
// may have at most MaxFailures logins for an email in flight at once; a
// success then clears the pair, and gives its reservation of the others back.
//
// IPv6 clients count by their /64, which one subscriber usually holds. The
// counters are named by an HMAC under a server secret, so the table shows
// neither emails nor IPs.
//
// A device token (OWASP "device cookies") is issued at every successful
// login: a random id, an expiry (DeviceTokenTTL) and an HMAC binding both
// to the email under the server secret. A login that presents a valid one
// for its email counts only against the pair (email, device), so an
// attacker exhausting the ceiling, or sharing the owner's IP, does not keep
// the owner's own device out.
//
// Delays increase rather than hitting a flat wall: when a pair's window
// ends with its attempts used up, its next window is twice as long (up to
// 64 windows). A guesser who keeps going gets MaxFailures guesses per 15
// minutes, then per 30, per hour, ..., and Retry-After says how long; a
// user who mistyped a few times and then got in starts over (a success
// clears the pair).
//
// Signups reserve one attempt per client IP and hour
// (Throttle.SignupsPerHour) before hashing, refused with CodeRateLimited.
// Requests that cause mail reserve one per client IP and hour as well
// (Accounts.MailRequestsPerHour), and each mail one on its address's
// counters, whose refusal suppresses the mail but not the answer.
package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/password"
	"github.com/sessiond/sessiond/token"
)

// Password length bounds in Unicode code points (docs/API.md, POST /v1/signup).
const (
	DefaultPasswordMinLength = 12
	PasswordMaxLength        = 128
	// maxUserAgent bounds the stored user agent, in bytes.
	maxUserAgent = 256
	maxEmail     = 254 // RFC 5321 path limit
)

// Service implements sessiond.AuthService.
type Service struct {
	store     sessiond.Store
	hasher    *password.Hasher
	issuer    *token.Issuer
	verifier  *token.Verifier
	refresher *token.Refresher
	clock     sessiond.Clock
	policy    sessiond.Policy
	pwMin     int
	pwScore   int
	throttle  Throttle
	keys      throttleKeys
	events    Events
	logger    *slog.Logger
	admin     adminDeps
	accounts  Accounts
	reauth    time.Duration
	// forgotCost is how long forgot requests' own work takes, twice which
	// each of them waits out, mailing or not (account.go).
	forgotCost costEstimate
	// requireVerified refuses logins to unconfirmed addresses and makes
	// signup answer alike for new and existing ones.
	requireVerified bool
	secrets         Sealer
	mfaIssuer       string
	rp              sessiond.RelyingParty
	dpop            DPoP
}

// Events receives what the service did that metrics count; a nil Events in
// Deps counts nothing.
type Events interface {
	// SessionsEvicted: a login evicted n live sessions beyond the cap.
	SessionsEvicted(n int)
	// RefreshReuseDetected: a superseded refresh token came back and its
	// session was ended.
	RefreshReuseDetected()
}

type noEvents struct{}

func (noEvents) SessionsEvicted(int)   {}
func (noEvents) RefreshReuseDetected() {}

// Deps is what a Service is built from.
type Deps struct {
	Store     sessiond.Store
	Hasher    *password.Hasher
	Issuer    *token.Issuer
	Verifier  *token.Verifier
	Refresher *token.Refresher
	Clock     sessiond.Clock // nil means sessiond.SystemClock
	Policy    sessiond.Policy
	// PasswordMinLength is the shortest password Signup accepts (0 means
	// the default); PasswordMinScore the zxcvbn score it needs (0-4).
	PasswordMinLength int
	PasswordMinScore  int
	Throttle          Throttle
	Events            Events
	Logger            *slog.Logger
	// Admin, WebhookURLCheck and OutboxNotify serve the admin API
	// (admin_webhooks.go); without Admin its methods fail.
	Admin sessiond.AdminStore
	// WebhookURLCheck refuses an endpoint URL deliveries must not go to
	// (CodeInvalidRequest); nil accepts none.
	WebhookURLCheck func(ctx context.Context, url string) error
	// OutboxNotify, if set, is called after outbox messages are written,
	// so that the worker sends them without waiting for its next poll.
	OutboxNotify func()
	// Accounts configures password reset and email verification
	// (account.go).
	Accounts Accounts
	// ReauthWindow is how recent a session's AuthTime must be for a
	// sensitive change without the credential in the request (reauth.go);
	// zero means DefaultReauthWindow.
	ReauthWindow time.Duration
	// RequireVerifiedEmail refuses a login whose address is not confirmed
	// (CodeEmailNotVerified, once the password checked out), and makes
	// Signup reveal nothing: it answers a new and an existing address
	// alike, after the same work, mailing the existing one's owner.
	RequireVerifiedEmail bool
	// Secrets seals TOTP secrets at rest; nil stores them in the clear.
	Secrets Sealer
	// MFAIssuer names the service in authenticator apps; empty means
	// DefaultMFAIssuer.
	MFAIssuer string
	// RelyingParty checks passkey ceremonies (package passkey); nil: the
	// passkey use cases answer CodeNotFound.
	RelyingParty sessiond.RelyingParty
	// DPoP configures device-bound sessions (dpop.go).
	DPoP DPoP
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{
		store: d.Store, hasher: d.Hasher, issuer: d.Issuer, verifier: d.Verifier,
		refresher: d.Refresher, clock: d.Clock, policy: d.Policy, pwMin: d.PasswordMinLength,
		pwScore: d.PasswordMinScore, throttle: d.Throttle, events: d.Events, logger: d.Logger,
		accounts: d.Accounts.withDefaults(), reauth: d.ReauthWindow, requireVerified: d.RequireVerifiedEmail,
		secrets: d.Secrets, mfaIssuer: d.MFAIssuer, rp: d.RelyingParty, dpop: d.DPoP,
	}
	if s.mfaIssuer == "" {
		s.mfaIssuer = DefaultMFAIssuer
	}
	if s.dpop.Mode == "" {
		s.dpop.Mode = sessiond.DPoPOptional
	}
	if s.reauth <= 0 {
		s.reauth = DefaultReauthWindow
	}
	if s.clock == nil {
		s.clock = sessiond.SystemClock
	}
	s.keys = deriveThrottleKeys(d.Throttle.Secret)
	s.admin = adminDeps{store: d.Admin, checkURL: d.WebhookURLCheck, notify: d.OutboxNotify}
	if s.pwMin == 0 {
		s.pwMin = DefaultPasswordMinLength
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.events == nil {
		s.events = noEvents{}
	}
	return s
}

var _ sessiond.AuthService = (*Service)(nil)

// now reads the service's one clock at the microsecond the stores keep.
func (s *Service) now() time.Time { return sessiond.Now(s.clock()) }

// NormalizeEmail is the form an email address is stored and looked up in:
// NFKC first, so that look-alikes typed differently (fullwidth letters, a
// decomposed accent) are one address and so one account, then trimmed and
// lower-cased. Signup and login both use it.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFKC.String(email)))
}

// checkEmailCharacters refuses control and format characters (zero-width
// spaces and joiners, the byte-order mark, bidi controls): invisible, they
// would make addresses that look the same and are not. NFKC keeps them.
func checkEmailCharacters(email string) error {
	if !utf8.ValidString(email) {
		return sessiond.Errorf(sessiond.CodeInvalidEmail, "email must be valid UTF-8")
	}
	for _, r := range email {
		if unicode.In(r, unicode.Cc, unicode.Cf) {
			return sessiond.Errorf(sessiond.CodeInvalidEmail, "email must not contain invisible or control characters (found U+%04X)", r)
		}
	}
	return nil
}

// validateEmail accepts a bare addr-spec with a dotted domain.
func validateEmail(email string) error {
	if err := checkEmailCharacters(email); err != nil {
		return err
	}
	if email == "" || len(email) > maxEmail {
		return sessiond.Errorf(sessiond.CodeInvalidEmail, "email must be an address of at most %d characters", maxEmail)
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return sessiond.Errorf(sessiond.CodeInvalidEmail, "email is not a valid address")
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return sessiond.Errorf(sessiond.CodeInvalidEmail, "email domain must be a fully qualified name")
	}
	return nil
}

// Signup creates a user and, in the same transaction, the mail that asks
// to confirm the address (when account mail is configured). With
// RequireVerifiedEmail it returns no user and no error for a new and an
// existing address alike (signupQuietly). A signup that
// gets as far as hashing counts against its client IP's limit, whether it
// then succeeds or finds the email taken; one that hits an outage gives
// its attempt back.
func (s *Service) Signup(ctx context.Context, email, pw string, c sessiond.ClientInfo) (*sessiond.User, error) {
	email = NormalizeEmail(email)
	if err := validateEmail(email); err != nil {
		return nil, err
	}
	pw = normalizePassword(pw)
	if err := s.checkPassword(pw, email); err != nil {
		return nil, err
	}
	counts, err := s.reserve(ctx, s.signupLimits(c.IP), sessiond.CodeRateLimited, "too many signups from this address; try again later")
	if err != nil {
		return nil, err
	}
	if s.requireVerified {
		return nil, s.signupQuietly(ctx, email, pw, c, counts)
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		s.release(ctx, counts)
		return nil, err
	}
	now := s.now()
	u := &sessiond.User{ID: sessiond.NewID(), Email: email, PasswordHash: hash, CreatedAt: now}
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		if err := record(tx, now, origin(c).event(sessiond.EventUserCreated, u.ID, "", nil)); err != nil {
			return err
		}
		if s.accounts.Mail == nil {
			return nil
		}
		return s.mailToken(tx, now, origin(c), u, sessiond.TokenVerifyEmail, sessiond.EventEmailVerificationSent)
	})
	if err != nil {
		if sessiond.ErrorCode(err) != sessiond.CodeEmailTaken {
			s.release(ctx, counts)
		}
		return nil, err
	}
	if s.accounts.Mail != nil {
		s.mailQueued()
	}
	return u, nil
}

// origin is the Origin of a request by c.
func origin(c sessiond.ClientInfo) Origin {
	return Origin{IP: c.IP, UserAgent: truncateUTF8(c.UserAgent, maxUserAgent)}
}

var errNotVerified = sessiond.Errorf(sessiond.CodeEmailNotVerified, "confirm your email address first: open the link in the mail we sent (signing up again with the address sends a new one)")

var errCredentials = sessiond.Errorf(sessiond.CodeInvalidCredentials, "email or password is incorrect")

// Login checks the password and creates a session (CreateSession's
// algorithm: the cap and LRU eviction, in one transaction with its events).
// A disabled account is told so only once the password checked out.
func (s *Service) Login(ctx context.Context, email, pw string, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
	email = NormalizeEmail(email)
	if err := checkEmailCharacters(email); err != nil {
		return nil, err
	}
	pw = normalizePassword(pw)
	jkt, err := s.bindingKey(ctx, c)
	if err != nil {
		return nil, err
	}
	device := s.deviceID(c.DeviceToken, email, s.now())
	counts, err := s.reserve(ctx, s.loginLimits(email, c.IP, device), sessiond.CodeTooManyAttempts, "too many failed logins; try again later")
	if err != nil {
		return nil, err
	}
	u, err := s.checkCredentials(ctx, email, pw)
	if err != nil {
		if sessiond.ErrorCode(err) != sessiond.CodeInvalidCredentials {
			s.release(ctx, counts) // not a guess: the hashing slots were busy, or the database down
		}
		if u != nil {
			s.loginFailed(ctx, u, c, "wrong_password")
		}
		return nil, err
	}
	if u.Disabled {
		if err := s.loginSucceeded(ctx, counts); err != nil {
			return nil, err
		}
		s.loginFailed(ctx, u, c, "account_disabled")
		return nil, errDisabled
	}
	if s.requireVerified && !u.EmailVerified {
		// The password was right: no failure to count against the pair.
		if err := s.loginSucceeded(ctx, counts); err != nil {
			return nil, err
		}
		s.loginFailed(ctx, u, c, "email_not_verified")
		return nil, errNotVerified
	}

	now := s.now()
	o := origin(c)
	sess := &sessiond.Session{
		ID:         sessiond.NewID(),
		UserID:     u.ID,
		CreatedAt:  now,
		LastUsedAt: now,
		ExpiresAt:  now.Add(s.policy.SessionTTL),
		UserAgent:  o.UserAgent,
		IP:         c.IP,
		AMR:        []string{"pwd"},
		AuthTime:   now,
		DPoPJKT:    jkt,
	}
	rt, hash, err := s.refresher.Mint(sess.ID)
	if err != nil {
		s.release(ctx, counts)
		return nil, err
	}
	sess.RefreshHash = hash
	// An imported (bcrypt) or weaker hash is replaced, now that the
	// password is known, in the login's own transaction.
	rehash := ""
	if s.hasher.NeedsRehash(u.PasswordHash) {
		if rehash, err = s.hasher.Hash(ctx, pw); err != nil {
			s.release(ctx, counts)
			return nil, err
		}
	}
	var evicted []string
	var second *sessiond.Error // the answer when a second factor is owed (mfa.go)
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		evicted, second = nil, nil
		// The password was checked against the hash read before the
		// transaction; a reset or change that committed since ended every
		// session, and this login must not open one with the old password.
		cur, err := tx.LockUser(u.ID)
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return errCredentials // deleted since
		}
		if err != nil {
			return err
		}
		if cur.PasswordHash != u.PasswordHash {
			return errCredentials
		}
		if rehash != "" {
			if err := tx.SetPasswordHash(u.ID, rehash); err != nil {
				return err
			}
		}
		methods, err := s.loginMethods(tx, u.ID)
		if err != nil {
			return err
		}
		if len(methods) > 0 {
			second, err = mfaRequired(tx, u.ID, methods, now)
			return err
		}
		_, evicted, err = openSession(tx, sess, now, s.policy, sessiond.MethodPassword, o)
		return err
	})
	if sessiond.ErrorCode(err) == sessiond.CodeAccountDisabled {
		// Disabled between the password check and the transaction.
		s.loginFailed(ctx, u, c, "account_disabled")
	}
	if err != nil {
		s.release(ctx, counts)
		return nil, err
	}
	if second != nil {
		// The password was no failure, but the login is not done: the
		// pair's count stays until the second factor is given.
		s.release(ctx, counts)
		return nil, second
	}
	if err := s.loginSucceeded(ctx, counts); err != nil {
		// The session exists: the client gets it, and the stale count
		// only ages out.
		s.logger.WarnContext(ctx, "login attempts not cleared", "error", err.Error())
	}
	s.evictedAtLogin(ctx, u.ID, evicted)
	t, err := s.tokens(sess, rt, now)
	if err != nil {
		return nil, err
	}
	t.DeviceToken, t.DeviceExpiresAt = s.issueDeviceToken(email, now)
	return t, nil
}

// evictedAtLogin counts and logs the sessions a login evicted.
func (s *Service) evictedAtLogin(ctx context.Context, userID string, evicted []string) {
	if len(evicted) == 0 {
		return
	}
	s.events.SessionsEvicted(len(evicted))
	// Every login beyond the cap evicts, as designed: routine, and the
	// evictions metric counts them; DEBUG keeps INFO for the unusual.
	s.logger.LogAttrs(ctx, slog.LevelDebug, "sessions evicted at login",
		slog.String("user_id", userID), slog.Any("evicted", evicted))
}

// loginFailed records login.failed for a known user. It has no change to
// ride on, so it is a transaction of its own; the answer to the client
// does not wait on it succeeding, and a failure is only logged.
func (s *Service) loginFailed(ctx context.Context, u *sessiond.User, c sessiond.ClientInfo, reason string) {
	now := s.now()
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		return record(tx, now, origin(c).event(sessiond.EventLoginFailed, u.ID, "", map[string]any{"reason": reason}))
	})
	if err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "could not record a failed login",
			slog.String("user_id", u.ID), slog.String("error", err.Error()))
	}
}

// checkCredentials returns the user whose password pw is, or
// errCredentials: the same answer, after the same hashing work, for an
// unknown email and a wrong password. With a wrong password it returns the
// user as well, for the failure's event.
func (s *Service) checkCredentials(ctx context.Context, email, pw string) (*sessiond.User, error) {
	u, err := s.store.UserByEmail(ctx, email)
	switch {
	case sessiond.ErrorCode(err) == sessiond.CodeNotFound:
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return nil, err
		}
		return nil, errCredentials
	case err != nil:
		return nil, err
	}
	ok, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil {
		return nil, err
	}
	if !ok {
		return u, errCredentials
	}
	return u, nil
}

// Refresh trades a refresh token for a new access token, and with rotation
// on, the session's next refresh token (RefreshSession's algorithm).
func (s *Service) Refresh(ctx context.Context, rt string, proof sessiond.DPoPProof) (*sessiond.Tokens, error) {
	a, next, err := s.refresher.Attempt(rt)
	if err != nil {
		return nil, err
	}
	if a.DPoPJKT, err = s.proofKey(ctx, proof); err != nil {
		return nil, err
	}
	now := s.now()
	sess, err := RefreshSession(ctx, s.store, a, now, s.policy, Origin{})
	if err != nil {
		if sessiond.ErrorCode(err) == sessiond.CodeRefreshTokenReused {
			s.events.RefreshReuseDetected()
			// Whose session it was is what lets an operator tell the
			// account's owner that their token was stolen.
			attrs := []slog.Attr{slog.String("session_id", a.SessionID), slog.Uint64("generation", a.Generation)}
			var reuse *sessiond.RefreshReuse
			if errors.As(err, &reuse) {
				attrs = append(attrs, slog.String("user_id", reuse.UserID), slog.Uint64("current_generation", reuse.Current))
			}
			s.logger.LogAttrs(ctx, slog.LevelWarn, "refresh token reuse: session ended", attrs...)
		}
		return nil, err
	}
	// The session now holds either the presented generation (rotation off)
	// or the one after it (rotated now, or by a twin inside the grace
	// window): in both cases that token is the one to hand back.
	out := rt
	if sess.Generation != a.Generation {
		out = next
	}
	return s.tokens(sess, out, now)
}

func (s *Service) tokens(sess *sessiond.Session, rt string, now time.Time) (*sessiond.Tokens, error) {
	// A session keeps how and when its user signed in, so every refresh
	// issues the claims the login did.
	var authTime time.Time
	if len(sess.AMR) > 0 {
		authTime = sess.AuthTimeOrCreated()
	}
	at, exp, err := s.issuer.SignSubject(token.Subject{
		UserID: sess.UserID, SessionID: sess.ID, NotAfter: sess.ExpiresAt, AMR: sess.AMR, AuthTime: authTime,
		DPoPJKT: sess.DPoPJKT,
	}, now)
	if err != nil {
		return nil, err
	}
	return &sessiond.Tokens{
		IssuedAt:         now,
		AccessToken:      at,
		AccessExpiresAt:  exp,
		RefreshToken:     rt,
		RefreshExpiresAt: sess.Deadline(s.policy),
		SessionID:        sess.ID,
		DPoPJKT:          sess.DPoPJKT,
	}, nil
}

// LogoutRefresh ends the session a refresh token belongs to.
func (s *Service) LogoutRefresh(ctx context.Context, rt string, proof sessiond.DPoPProof) error {
	a, _, err := s.refresher.Attempt(rt)
	if err != nil {
		return err
	}
	if a.DPoPJKT, err = s.proofKey(ctx, proof); err != nil {
		return err
	}
	return EndSessionByRefresh(ctx, s.store, a, s.now(), s.policy, Origin{})
}

// Authenticate verifies an access token offline, then checks that its
// session is still live, so a logged-out or evicted session is refused at
// once. A bound token needs the DPoP scheme and a proof by its key for it
// (authenticateDPoP).
func (s *Service) Authenticate(ctx context.Context, at string, proof *sessiond.DPoPProof) (*sessiond.Principal, error) {
	c, err := s.verifier.Verify(at)
	if err != nil {
		return nil, err
	}
	if err := s.authenticateDPoP(ctx, at, c.DPoPJKT, proof); err != nil {
		return nil, err
	}
	sess, err := s.store.LiveSession(ctx, c.Subject, c.SessionID, s.now(), s.policy)
	if err != nil {
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return nil, sessiond.Errorf(sessiond.CodeInvalidToken, "the session of this token has ended")
		}
		return nil, err
	}
	return &sessiond.Principal{UserID: c.Subject, SessionID: c.SessionID, ExpiresAt: c.ExpiresAt, AuthTime: sess.AuthTimeOrCreated(), AMR: sess.AMR}, nil
}

// Me returns the principal's user.
func (s *Service) Me(ctx context.Context, p *sessiond.Principal) (*sessiond.User, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return nil, sessiond.Errorf(sessiond.CodeInvalidToken, "the user of this token no longer exists")
	}
	return u, err
}

// truncateUTF8 makes s valid UTF-8 and cuts it to at most n bytes without
// splitting a character.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
