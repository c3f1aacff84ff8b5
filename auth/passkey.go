package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sessiond/sessiond"
)

// Passkeys: registration by a signed-in user, usernameless login. Each
// finish runs in one transaction that consumes the ceremony's challenge
// (deleting it, so a replay finds nothing), checks the answer
// (sessiond.RelyingParty) and applies it: a new passkey and its event, or
// the passkey's new signature counter and the login's session. A finish
// that fails its checks still commits the consumed challenge, and for a
// known user the login.failed event, and returns its error afterwards.

const (
	// MaxPasskeys bounds the passkeys of one user, and so the list of
	// credentials every registration excludes.
	MaxPasskeys = 20
	// MaxPasskeyName bounds a passkey's name, in code points.
	MaxPasskeyName = 64
	// defaultPasskeyName names a passkey registered without a name.
	defaultPasskeyName = "Passkey"
	// Ceremonies begun are limited: a login begin per client IP (each
	// writes a challenge row, and no credential is needed to ask), a
	// registration begin per user; both per challenge lifetime.
	passkeyLoginBeginsPerIP      = 300
	passkeyRegisterBeginsPerUser = 30
	// challengeIDLen is the length of a challenge id: 32 random bytes,
	// unpadded base64url.
	challengeIDLen = 43
)

var (
	errNoPasskeys = sessiond.Errorf(sessiond.CodeNotFound,
		"passkeys are not available on this server (its public URL needs a domain name)")
	errRegisterChallenge = sessiond.Errorf(sessiond.CodeInvalidRequest,
		"the challenge is unknown, used, expired or not this session's; begin the registration again")
	errLoginChallenge = sessiond.Errorf(sessiond.CodeInvalidCredentials,
		"the challenge is unknown, used or expired; begin the sign-in again")
	errUnknownPasskey = sessiond.Errorf(sessiond.CodeInvalidCredentials,
		"this passkey is not registered here (it may have been removed)")
	errClonedPasskey = sessiond.Errorf(sessiond.CodeInvalidCredentials,
		"this passkey's signature counter went backwards, a sign that it was copied; it is refused: remove it and register the authenticator again")
	errTooManyPasskeys = sessiond.Errorf(sessiond.CodeInvalidRequest,
		"an account can have at most %d passkeys; remove one first", MaxPasskeys)
	errNoUserPasskeys = sessiond.Errorf(sessiond.CodeNotFound, "this account has no passkeys")
	errProofChallenge = sessiond.Errorf(sessiond.CodeInvalidCredentials,
		"the passkey challenge is unknown, used, expired or not for this sign-in; begin again")
)

// newChallengeID is a fresh challenge id (256 random bits).
func newChallengeID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// challengeKey is what a challenge id is stored under: its SHA-256, so that
// the table holds no id a client could present. false if id cannot be one,
// which then costs no database work.
func challengeKey(id string) (string, bool) {
	if len(id) != challengeIDLen {
		return "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(id); err != nil {
		return "", false
	}
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:]), true
}

// isUUID reports whether id is in NewID's form, as every passkey id and
// user id is; anything else matches nothing and costs no database work
// (and a NUL or invalid UTF-8 never reaches a text parameter).
func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range []byte(id) {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// passkeyName is name trimmed, or the default for an empty one.
func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return defaultPasskeyName, nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxPasskeyName {
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "name must be valid UTF-8 of at most %d characters", MaxPasskeyName)
	}
	for _, r := range name {
		if unicode.In(r, unicode.Cc, unicode.Cf) {
			return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "name must not contain control or invisible characters (found U+%04X)", r)
		}
	}
	return name, nil
}

// PasskeyAMR is how a passkey proved its user (RFC 8176): a key on the
// authenticator ("hwk"), or a synced passkey, whose key can leave the
// device that holds it ("swk", told by the backup-eligible flag); "user":
// the authenticator verified the person, with a PIN or a biometric.
func PasskeyAMR(backupEligible, userVerified bool) []string {
	amr := []string{"hwk"}
	if backupEligible {
		amr[0] = "swk"
	}
	if userVerified {
		amr = append(amr, "user")
	}
	return amr
}

// passkeyProof is the outcome of usePasskey: the passkey and whether its
// authenticator verified its user, or refused, the client's error, with
// reason, login.failed's, when the passkey is the user's ("" otherwise).
type passkeyProof struct {
	pk           *sessiond.Passkey
	userVerified bool
	reason       string
	refused      error
}

// usePasskey checks a, answered to the ceremony state, as a proof by one
// of userID's passkeys, in tx with the user locked. The passkey's row is
// held while its counter is checked and advanced, so that two uses of one
// passkey cannot both pass one counter value; a counter that went
// backwards flags the passkey, which is refused from then on. An accepted
// assertion's counter, flags and time of use are stored.
func (s *Service) usePasskey(tx sessiond.Tx, state []byte, a *sessiond.PasskeyAssertion, userID string, now time.Time) (passkeyProof, error) {
	pk, err := tx.PasskeyByCredentialID(a.CredentialID)
	if err != nil {
		return passkeyProof{}, err
	}
	if pk == nil || pk.UserID != userID {
		return passkeyProof{refused: errUnknownPasskey}, nil
	}
	if pk.CloneWarning {
		return passkeyProof{reason: "passkey_cloned", refused: errClonedPasskey}, nil
	}
	v, err := s.rp.FinishLogin(state, a, pk)
	if sessiond.ErrorCode(err) == sessiond.CodeInvalidRequest {
		return passkeyProof{reason: "passkey_invalid", refused: sessiond.Errorf(sessiond.CodeInvalidCredentials, "%s", sessiond.ErrorMessage(err))}, nil
	}
	if err != nil {
		return passkeyProof{}, err
	}
	if v.CloneWarning {
		pk.CloneWarning = true
		if err := tx.UpdatePasskeyUse(pk); err != nil {
			return passkeyProof{}, err
		}
		return passkeyProof{reason: "passkey_cloned", refused: errClonedPasskey}, nil
	}
	pk.Record, pk.SignCount, pk.BackupState, pk.LastUsedAt = v.Record, v.SignCount, v.BackupState, now
	if err := tx.UpdatePasskeyUse(pk); err != nil {
		return passkeyProof{}, err
	}
	return passkeyProof{pk: pk, userVerified: v.UserVerified}, nil
}

// parseAssertion is the relying party's ParseAssertion, with the check
// every use needs first: passkeys are served here.
func (s *Service) parseAssertion(credential []byte) (*sessiond.PasskeyAssertion, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	return s.rp.ParseAssertion(credential)
}

// knownUserCeremony begins, in tx, a ceremony for the passkeys of the
// locked user u, of kind, bound to bound (the session, or the mfa_token's
// hash), and returns it.
func (s *Service) knownUserCeremony(tx sessiond.Tx, u *sessiond.User, kind, bound string, now time.Time) (*sessiond.PasskeyCeremony, error) {
	pks, err := tx.UserPasskeys(u.ID)
	if err != nil {
		return nil, err
	}
	if len(pks) == 0 {
		return nil, errNoUserPasskeys
	}
	allow := make([][]byte, len(pks))
	for i := range pks {
		allow[i] = pks[i].CredentialID
	}
	options, state, err := s.rp.BeginLogin(&sessiond.PasskeyUser{ID: u.ID, Name: u.Email}, allow)
	if err != nil {
		return nil, err
	}
	id := newChallengeID()
	key, _ := challengeKey(id)
	err = tx.InsertPasskeyChallenge(&sessiond.PasskeyChallenge{
		ID: key, Kind: kind, UserID: u.ID, SessionID: bound, State: state,
		CreatedAt: now, ExpiresAt: now.Add(sessiond.PasskeyChallengeTTL),
	})
	if err != nil {
		return nil, err
	}
	return &sessiond.PasskeyCeremony{ChallengeID: id, Options: options}, nil
}

// mfaBinding is what binds a second-factor challenge to the mfa_token
// whose hash is hash (PasskeyChallenge.SessionID).
func mfaBinding(hash []byte) string { return base64.RawURLEncoding.EncodeToString(hash) }

// BeginPasskeyReauth implements sessiond.PasskeyService.
func (s *Service) BeginPasskeyReauth(ctx context.Context, p *sessiond.Principal) (*sessiond.PasskeyCeremony, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	limit := []sessiond.AttemptLimit{{Key: s.counterKey("passkeyreauth", p.UserID), Max: passkeyRegisterBeginsPerUser, Window: sessiond.PasskeyChallengeTTL}}
	if _, err := s.reserve(ctx, limit, sessiond.CodeRateLimited, "too many passkey reauthentications begun; try again later"); err != nil {
		return nil, err
	}
	now := s.now()
	var c *sessiond.PasskeyCeremony
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := tx.LockUser(p.UserID)
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return sessiond.Errorf(sessiond.CodeInvalidToken, "the user of this token no longer exists")
		}
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		c, err = s.knownUserCeremony(tx, u, sessiond.PasskeyReauth, p.SessionID, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// BeginPasskeyRegistration implements sessiond.PasskeyService.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p *sessiond.Principal) (*sessiond.PasskeyCeremony, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	if err := s.recentAuth(p, s.now()); err != nil {
		return nil, err
	}
	limit := []sessiond.AttemptLimit{{Key: s.counterKey("passkeyreg", p.UserID), Max: passkeyRegisterBeginsPerUser, Window: sessiond.PasskeyChallengeTTL}}
	if _, err := s.reserve(ctx, limit, sessiond.CodeRateLimited, "too many passkey registrations begun; try again later"); err != nil {
		return nil, err
	}
	id := newChallengeID()
	key, _ := challengeKey(id)
	now := s.now()
	var options []byte
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := tx.LockUser(p.UserID)
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return sessiond.Errorf(sessiond.CodeInvalidToken, "the user of this token no longer exists")
		}
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		existing, err := tx.UserPasskeys(u.ID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxPasskeys {
			return errTooManyPasskeys
		}
		exclude := make([][]byte, len(existing))
		for i := range existing {
			exclude[i] = existing[i].CredentialID
		}
		var state []byte
		if options, state, err = s.rp.BeginRegistration(sessiond.PasskeyUser{ID: u.ID, Name: u.Email}, exclude); err != nil {
			return err
		}
		return tx.InsertPasskeyChallenge(&sessiond.PasskeyChallenge{
			ID: key, Kind: sessiond.PasskeyRegister, UserID: u.ID, SessionID: p.SessionID, State: state,
			CreatedAt: now, ExpiresAt: now.Add(sessiond.PasskeyChallengeTTL),
		})
	})
	if err != nil {
		return nil, err
	}
	return &sessiond.PasskeyCeremony{ChallengeID: id, Options: options}, nil
}

// FinishPasskeyRegistration implements sessiond.PasskeyService. The
// challenge must have been begun by the same session, and the sign-in
// must still be recent: adding a way to sign in is a sensitive change.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p *sessiond.Principal, challengeID string, credential []byte, name string, c sessiond.ClientInfo) (*sessiond.Passkey, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	name, err := passkeyName(name)
	if err != nil {
		return nil, err
	}
	key, ok := challengeKey(challengeID)
	if !ok {
		return nil, errRegisterChallenge
	}
	now := s.now()
	if err := s.recentAuth(p, now); err != nil {
		return nil, err
	}
	o := origin(c)
	var pk *sessiond.Passkey
	var verdict error
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		pk, verdict = nil, nil
		ch, err := tx.ConsumePasskeyChallenge(key, sessiond.PasskeyRegister, now)
		if err != nil {
			return err
		}
		if ch == nil || ch.UserID != p.UserID || ch.SessionID != p.SessionID {
			verdict = errRegisterChallenge
			return nil
		}
		u, err := tx.LockUser(p.UserID)
		if err != nil {
			return err
		}
		if u.Disabled {
			return errDisabled
		}
		existing, err := tx.UserPasskeys(u.ID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxPasskeys {
			verdict = errTooManyPasskeys
			return nil
		}
		v, err := s.rp.FinishRegistration(sessiond.PasskeyUser{ID: u.ID, Name: u.Email}, ch.State, credential)
		if sessiond.ErrorCode(err) == sessiond.CodeInvalidRequest {
			verdict = err
			return nil
		}
		if err != nil {
			return err
		}
		pk = &sessiond.Passkey{
			ID: sessiond.NewID(), UserID: u.ID, CredentialID: v.CredentialID, Name: name, Record: v.Record,
			SignCount: v.SignCount, BackupEligible: v.BackupEligible, BackupState: v.BackupState, CreatedAt: now,
		}
		if err := tx.InsertPasskey(pk); err != nil {
			return err
		}
		return record(tx, now, o.event(sessiond.EventPasskeyAdded, u.ID, p.SessionID, map[string]any{"passkey_id": pk.ID, "name": pk.Name}))
	})
	if err != nil {
		return nil, err
	}
	if verdict != nil {
		return nil, verdict
	}
	return pk, nil
}

// Passkeys implements sessiond.PasskeyService.
func (s *Service) Passkeys(ctx context.Context, p *sessiond.Principal) ([]sessiond.Passkey, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	var out []sessiond.Passkey
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		var err error
		out, err = tx.UserPasskeys(p.UserID)
		return err
	})
	return out, err
}

var errNoSuchPasskey = sessiond.Errorf(sessiond.CodeNotFound, "no such passkey")

// RenamePasskey implements sessiond.PasskeyService. A name is a label for
// the person, not a credential: renaming needs no recent sign-in.
func (s *Service) RenamePasskey(ctx context.Context, p *sessiond.Principal, id, name string) (*sessiond.Passkey, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	if strings.TrimSpace(name) == "" {
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"name\" is required")
	}
	name, err := passkeyName(name)
	if err != nil {
		return nil, err
	}
	if !isUUID(id) {
		return nil, errNoSuchPasskey
	}
	var pk *sessiond.Passkey
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		var err error
		pk, err = tx.RenamePasskey(p.UserID, id, name)
		return err
	})
	if err == nil && pk == nil {
		err = errNoSuchPasskey
	}
	return pk, err
}

// DeletePasskey implements sessiond.PasskeyService. Sessions the passkey
// opened stay: removing a lost authenticator's passkey is what the
// sessions list and "sign out everywhere" are for.
func (s *Service) DeletePasskey(ctx context.Context, p *sessiond.Principal, id string, c sessiond.ClientInfo) error {
	if s.rp == nil {
		return errNoPasskeys
	}
	now := s.now()
	if err := s.recentAuth(p, now); err != nil {
		return err
	}
	if !isUUID(id) {
		return errNoSuchPasskey
	}
	o := origin(c)
	return s.store.Tx(ctx, func(tx sessiond.Tx) error {
		pk, err := tx.DeletePasskey(p.UserID, id)
		if err != nil {
			return err
		}
		if pk == nil {
			return errNoSuchPasskey
		}
		return record(tx, now, o.event(sessiond.EventPasskeyRemoved, p.UserID, p.SessionID, map[string]any{"passkey_id": pk.ID, "name": pk.Name}))
	})
}

// BeginPasskeyLogin implements sessiond.PasskeyService. With an
// mfa_token the challenge is bound to that token and its user, and only
// LoginMFA finishes it.
func (s *Service) BeginPasskeyLogin(ctx context.Context, mfaToken string, c sessiond.ClientInfo) (*sessiond.PasskeyCeremony, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	var hash []byte
	if mfaToken != "" {
		var ok bool
		if hash, ok = accountTokenHash(mfaToken); !ok {
			return nil, errMFAToken
		}
	}
	if c.IP != "" {
		limit := []sessiond.AttemptLimit{{Key: s.counterKey("passkeylogin", clientKey(c.IP)), Max: passkeyLoginBeginsPerIP, Window: sessiond.PasskeyChallengeTTL}}
		if _, err := s.reserve(ctx, limit, sessiond.CodeRateLimited, "too many passkey sign-ins begun from this address; try again later"); err != nil {
			return nil, err
		}
	}
	now := s.now()
	if hash != nil {
		var out *sessiond.PasskeyCeremony
		err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
			ch, err := tx.MFAChallenge(hash, now)
			if err != nil {
				return err
			}
			if ch == nil {
				return errMFAToken
			}
			u, err := tx.LockUser(ch.UserID)
			if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
				return errMFAToken
			}
			if err != nil {
				return err
			}
			out, err = s.knownUserCeremony(tx, u, sessiond.PasskeySecondFactor, mfaBinding(hash), now)
			return err
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	options, state, err := s.rp.BeginLogin(nil, nil)
	if err != nil {
		return nil, err
	}
	id := newChallengeID()
	key, _ := challengeKey(id)
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		return tx.InsertPasskeyChallenge(&sessiond.PasskeyChallenge{
			ID: key, Kind: sessiond.PasskeyLogin, State: state, CreatedAt: now, ExpiresAt: now.Add(sessiond.PasskeyChallengeTTL),
		})
	})
	if err != nil {
		return nil, err
	}
	return &sessiond.PasskeyCeremony{ChallengeID: id, Options: options}, nil
}

// FinishPasskeyLogin implements sessiond.PasskeyService: a passkey whose
// authenticator verified its user is a complete login. The user is locked
// before the passkey (the order of every other change of a user's
// passkeys), the passkey's row is held while its counter is checked and
// advanced, so two logins with one passkey cannot both pass one counter
// value, and the session is opened under the cap in the same transaction.
func (s *Service) FinishPasskeyLogin(ctx context.Context, challengeID string, credential []byte, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
	if s.rp == nil {
		return nil, errNoPasskeys
	}
	key, ok := challengeKey(challengeID)
	if !ok {
		return nil, errLoginChallenge
	}
	a, err := s.rp.ParseAssertion(credential)
	if err != nil {
		return nil, err
	}
	// The user handle is the user id (PasskeyUser); a discoverable
	// credential always returns it.
	if len(a.UserHandle) == 0 {
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "the credential has no user handle: it is not a passkey (discoverable credential)")
	}
	if !isUUID(string(a.UserHandle)) {
		return nil, errUnknownPasskey
	}
	jkt, err := s.bindingKey(ctx, c)
	if err != nil {
		return nil, err
	}
	now := s.now()
	o := origin(c)
	sess := &sessiond.Session{
		ID: sessiond.NewID(), CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.policy.SessionTTL),
		UserAgent: o.UserAgent, IP: c.IP, AuthTime: now, DPoPJKT: jkt,
	}
	rt, hash, err := s.refresher.Mint(sess.ID)
	if err != nil {
		return nil, err
	}
	sess.RefreshHash = hash
	var (
		verdict error
		email   string
		evicted []string
	)
	failed := func(tx sessiond.Tx, userID, reason string, err error) error {
		verdict = err
		return record(tx, now, o.event(sessiond.EventLoginFailed, userID, "", map[string]any{"reason": reason, "method": sessiond.MethodPasskey}))
	}
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		verdict, evicted = nil, nil
		ch, err := tx.ConsumePasskeyChallenge(key, sessiond.PasskeyLogin, now)
		if err != nil {
			return err
		}
		if ch == nil {
			verdict = errLoginChallenge
			return nil
		}
		u, err := tx.LockUser(string(a.UserHandle))
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			verdict = errUnknownPasskey
			return nil
		}
		if err != nil {
			return err
		}
		proof, err := s.usePasskey(tx, ch.State, a, u.ID, now)
		switch {
		case err != nil:
			return err
		case proof.refused != nil && proof.reason == "":
			verdict = proof.refused
			return nil
		case proof.refused != nil:
			return failed(tx, u.ID, proof.reason, proof.refused)
		case !proof.userVerified:
			// The options required it; a login by the passkey alone
			// rests on it.
			return failed(tx, u.ID, "passkey_not_verified", sessiond.Errorf(sessiond.CodeInvalidCredentials, "the authenticator did not verify its user (PIN or biometric)"))
		}
		// Told only once the passkey checked out, as with a password.
		if u.Disabled {
			return failed(tx, u.ID, "account_disabled", errDisabled)
		}
		pk := proof.pk
		sess.UserID = u.ID
		sess.AMR = PasskeyAMR(pk.BackupEligible, true)
		email = u.Email
		_, evicted, err = openSession(tx, sess, now, s.policy, sessiond.MethodPasskey, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	if verdict != nil {
		return nil, verdict
	}
	if len(evicted) > 0 {
		s.events.SessionsEvicted(len(evicted))
		s.logger.LogAttrs(ctx, slog.LevelDebug, "sessions evicted at login",
			slog.String("user_id", sess.UserID), slog.Any("evicted", evicted))
	}
	t, err := s.tokens(sess, rt, now)
	if err != nil {
		return nil, err
	}
	t.DeviceToken, t.DeviceExpiresAt = s.issueDeviceToken(email, now)
	return t, nil
}

var _ sessiond.PasskeyService = (*Service)(nil)
