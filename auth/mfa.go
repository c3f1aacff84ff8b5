package auth

import (
	"context"
	"slices"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/mfa"
)

// Second factors: TOTP enrolment, recovery codes, the login step that an
// mfa_required answer leaves open, and step-up.
//
// A login whose password checks out for a user with TOTP on opens no
// session: it stores an MFA challenge (the hash of the mfa_token it
// answers with) and the client finishes with LoginMFA. Until then nothing
// about the user's sessions changes: no cap is applied, nothing is
// evicted. The password step does not clear the login throttle's pair
// either (it only gives its own reservation back): wrong codes count on
// the same counters as wrong passwords, so someone who knows the password
// cannot reset the count by logging in again and so guess codes without
// end. Only a finished login clears it.
//
// Replays: a factor keeps the last time step a code was accepted for, and
// accepting one is a conditional update (last_step < step), so a code
// works once, however concurrent its uses.

// DefaultMFAIssuer is the issuer an authenticator app shows for sessiond's
// codes.
const DefaultMFAIssuer = "sessiond"

// Sealer seals secrets at rest (package seal's Keyring). The context is
// what the value is, so that a sealed value moved to another row does not
// open there.
type Sealer interface {
	Seal(context string, plaintext []byte) []byte
	Open(context string, stored []byte) (plaintext []byte, sealed bool, err error)
}

var _ sessiond.MFAService = (*Service)(nil)

// loginMethods are the second factors a login may finish with: TOTP and
// its recovery codes when TOTP is on, passkey when the user has one (and
// passkeys are served); none means the password is the whole login.
func (s *Service) loginMethods(tx sessiond.Tx, userID string) ([]string, error) {
	var methods []string
	f, err := tx.TOTPFactor(userID)
	if err != nil {
		return nil, err
	}
	if f.Active() {
		methods = append(methods, sessiond.MFAMethodTOTP, sessiond.MFAMethodRecoveryCode)
	}
	if s.rp != nil {
		pks, err := tx.UserPasskeys(userID)
		if err != nil {
			return nil, err
		}
		if len(pks) > 0 {
			methods = append(methods, sessiond.MFAMethodPasskey)
		}
	}
	return methods, nil
}

// hasSecondFactor reports whether a session's amr holds a second factor's
// proof: a one-time code, or a passkey.
func hasSecondFactor(amr []string) bool {
	return slices.Contains(amr, amrOTP) || slices.Contains(amr, "hwk") || slices.Contains(amr, "swk")
}

// amrOTP is the RFC 8176 value of a one-time code: a TOTP code, and a
// recovery code (a one-time look-up secret; RFC 8176 has no value of its
// own for it, and session.created's data.factor tells them apart).
const amrOTP = "otp"

var (
	errWrongCode   = sessiond.Errorf(sessiond.CodeInvalidCredentials, "the code is incorrect, or was used already")
	errMFAToken    = sessiond.Errorf(sessiond.CodeInvalidToken, "the mfa_token is invalid, used, expired or out of attempts; sign in again")
	errNoFactor    = sessiond.Errorf(sessiond.CodeNotFound, "two-step verification (TOTP) is not on for this account")
	errNeedsFactor = sessiond.Errorf(sessiond.CodeReauthRequired, "this change needs a second factor: send code (or recovery_code), or reauthenticate with one first")
)

func (s *Service) sealTOTP(userID string, secret []byte) []byte {
	if s.secrets == nil {
		return secret
	}
	return s.secrets.Seal(sessiond.TOTPSecretContext(userID), secret)
}

func (s *Service) openTOTP(f *sessiond.TOTPFactor) ([]byte, error) {
	if s.secrets == nil {
		return f.Secret, nil
	}
	p, _, err := s.secrets.Open(sessiond.TOTPSecretContext(f.UserID), f.Secret)
	if err != nil {
		return nil, sessiond.Internal("open totp secret", err)
	}
	return p, nil
}

// codeLimits is the per-user limit of codes tried on the Bearer endpoints
// (confirm, disable, new recovery codes, step-up): someone holding an
// access token must not be able to guess codes there without end.
func (s *Service) codeLimits(userID string) []sessiond.AttemptLimit {
	t := s.throttle
	if t.MaxFailures <= 0 {
		return nil
	}
	return []sessiond.AttemptLimit{{Key: s.counterKey("mfacode", userID), Max: t.MaxFailures, Window: t.Window, MaxLevel: pairMaxLevel}}
}

// withCodeLimit runs check, which tries a code and reports whether it was
// wrong, under the user's code limit: a wrong code keeps its reservation,
// anything else gives it back (a right code clears the count).
func (s *Service) withCodeLimit(ctx context.Context, userID string, check func() (wrong bool, err error)) error {
	counts, err := s.reserve(ctx, s.codeLimits(userID), sessiond.CodeTooManyAttempts, "too many wrong codes; try again later")
	if err != nil {
		return err
	}
	wrong, err := check()
	switch {
	case err != nil:
		s.release(ctx, counts)
		return err
	case wrong:
		return errWrongCode
	}
	if len(counts) > 0 {
		if err := s.store.ClearAttempts(ctx, counts[0].Key); err != nil {
			s.logger.WarnContext(ctx, "code attempts not cleared", "error", err.Error())
		}
	}
	return nil
}

// spendFactor checks f against the user's factor in tx and, if it is
// right, spends it: the TOTP step becomes the last one used, or the
// recovery code is marked used. It returns the factor's method, or "" for a
// wrong, replayed or already used code.
func (s *Service) spendFactor(tx sessiond.Tx, f *sessiond.TOTPFactor, in sessiond.SecondFactor, now time.Time) (string, error) {
	switch {
	case in.Code != "" && in.RecoveryCode != "":
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "send code or recovery_code, not both")
	case in.Code != "":
		secret, err := s.openTOTP(f)
		if err != nil {
			return "", err
		}
		step, v := mfa.Verify(secret, in.Code, now, f.LastStep)
		if v != mfa.Accepted {
			return "", nil
		}
		ok, err := tx.UseTOTPStep(f.UserID, step)
		if err != nil || !ok {
			return "", err
		}
		return sessiond.MFAMethodTOTP, nil
	case in.RecoveryCode != "":
		code, ok := mfa.NormalizeRecoveryCode(in.RecoveryCode)
		if !ok {
			return "", nil
		}
		hashes, err := tx.RecoveryCodes(f.UserID)
		if err != nil {
			return "", err
		}
		i := mfa.MatchRecoveryCode(hashes, mfa.HashRecoveryCode(f.UserID, code))
		if i < 0 {
			return "", nil
		}
		ok, err = tx.UseRecoveryCode(f.UserID, hashes[i], now)
		if err != nil || !ok {
			return "", err
		}
		return sessiond.MFAMethodRecoveryCode, nil
	}
	return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"code\" or \"recovery_code\" is required")
}

// newRecoveryCodes stores a fresh set for the user in tx, replacing the
// old one, and returns the codes, which exist in the clear only here.
func newRecoveryCodes(tx sessiond.Tx, userID string, now time.Time) ([]string, error) {
	codes := mfa.NewRecoveryCodes()
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		n, _ := mfa.NormalizeRecoveryCode(c)
		hashes[i] = mfa.HashRecoveryCode(userID, n)
	}
	if err := tx.ReplaceRecoveryCodes(userID, hashes, now); err != nil {
		return nil, err
	}
	return codes, nil
}

// MFAStatus says whether TOTP is on and how many recovery codes are left.
func (s *Service) MFAStatus(ctx context.Context, p *sessiond.Principal) (*sessiond.MFAStatus, error) {
	var st sessiond.MFAStatus
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		st = sessiond.MFAStatus{}
		f, err := tx.TOTPFactor(p.UserID)
		if err != nil || !f.Active() {
			return err
		}
		codes, err := tx.RecoveryCodes(p.UserID)
		st.TOTP, st.RecoveryCodesLeft = true, len(codes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// BeginTOTP starts a TOTP enrolment: a new secret, stored sealed and
// pending until ConfirmTOTP. Beginning again replaces a pending secret.
func (s *Service) BeginTOTP(ctx context.Context, p *sessiond.Principal, c sessiond.ClientInfo) (*sessiond.TOTPEnrollment, error) {
	now := s.now()
	if err := s.recentAuth(p, now); err != nil {
		return nil, err
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	key, err := mfa.NewKey(s.mfaIssuer, u.Email)
	if err != nil {
		return nil, sessiond.Internal("totp key", err)
	}
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		if _, err := tx.LockUser(u.ID); err != nil {
			return err
		}
		stored, err := tx.PutPendingTOTP(&sessiond.TOTPFactor{UserID: u.ID, Secret: s.sealTOTP(u.ID, key.Secret), CreatedAt: now})
		if err != nil {
			return err
		}
		if !stored {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "two-step verification is on already; turn it off first to set it up anew")
		}
		return nil
	})
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return nil, sessiond.Errorf(sessiond.CodeInvalidToken, "the user of this token no longer exists")
	}
	if err != nil {
		return nil, err
	}
	return &sessiond.TOTPEnrollment{Secret: key.Text, URL: key.URL, QRCode: key.QR}, nil
}

// ConfirmTOTP turns the pending factor on with its first code, issues the
// recovery codes and records mfa.enabled, in one transaction.
func (s *Service) ConfirmTOTP(ctx context.Context, p *sessiond.Principal, code string, c sessiond.ClientInfo) ([]string, error) {
	var codes []string
	err := s.withCodeLimit(ctx, p.UserID, func() (bool, error) {
		now := s.now()
		wrong := false
		err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
			wrong, codes = false, nil
			if _, err := tx.LockUser(p.UserID); err != nil {
				return err
			}
			f, err := tx.TOTPFactor(p.UserID)
			if err != nil {
				return err
			}
			if f == nil || f.Active() {
				return sessiond.Errorf(sessiond.CodeInvalidRequest, "no TOTP enrolment is pending; begin with POST /v1/mfa/totp")
			}
			secret, err := s.openTOTP(f)
			if err != nil {
				return err
			}
			step, v := mfa.Verify(secret, code, now, f.LastStep)
			if v != mfa.Accepted {
				wrong = true
				return nil
			}
			ok, err := tx.ConfirmTOTP(p.UserID, f.Secret, step, now)
			if err != nil {
				return err
			}
			if !ok {
				wrong = true
				return nil
			}
			if codes, err = newRecoveryCodes(tx, p.UserID, now); err != nil {
				return err
			}
			return record(tx, now, origin(c).event(sessiond.EventMFAEnabled, p.UserID, p.SessionID, map[string]any{"method": sessiond.MFAMethodTOTP}))
		})
		return wrong, err
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// secondFactorChange is the shape of DisableTOTP and
// RegenerateRecoveryCodes: a recent sign-in, a second factor (the
// session's, or in) and the user's factor on; then change, in the same
// transaction.
func (s *Service) secondFactorChange(ctx context.Context, p *sessiond.Principal, in sessiond.SecondFactor,
	change func(tx sessiond.Tx, f *sessiond.TOTPFactor, now time.Time) error) error {
	if err := s.recentAuth(p, s.now()); err != nil {
		return err
	}
	given := in.Code != "" || in.RecoveryCode != ""
	if !given && !hasSecondFactor(p.AMR) {
		return errNeedsFactor
	}
	run := func() (bool, error) {
		now := s.now()
		wrong := false
		err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
			wrong = false
			if _, err := tx.LockUser(p.UserID); err != nil {
				return err
			}
			f, err := tx.TOTPFactor(p.UserID)
			if err != nil {
				return err
			}
			if f == nil {
				return errNoFactor
			}
			if given && f.Active() {
				method, err := s.spendFactor(tx, f, in, now)
				if err != nil {
					return err
				}
				if method == "" {
					wrong = true
					return nil
				}
			}
			return change(tx, f, now)
		})
		return wrong, err
	}
	if !given {
		_, err := run()
		return err
	}
	return s.withCodeLimit(ctx, p.UserID, run)
}

// DisableTOTP turns TOTP off: the factor and the recovery codes go, and
// mfa.disabled is recorded. A pending enrolment is simply dropped.
func (s *Service) DisableTOTP(ctx context.Context, p *sessiond.Principal, in sessiond.SecondFactor, c sessiond.ClientInfo) error {
	return s.secondFactorChange(ctx, p, in, func(tx sessiond.Tx, f *sessiond.TOTPFactor, now time.Time) error {
		if _, err := tx.DeleteTOTP(p.UserID); err != nil {
			return err
		}
		if !f.Active() {
			return nil
		}
		return record(tx, now, origin(c).event(sessiond.EventMFADisabled, p.UserID, p.SessionID, map[string]any{"method": sessiond.MFAMethodTOTP}))
	})
}

// RegenerateRecoveryCodes replaces the user's recovery codes.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *sessiond.Principal, in sessiond.SecondFactor, c sessiond.ClientInfo) ([]string, error) {
	var codes []string
	err := s.secondFactorChange(ctx, p, in, func(tx sessiond.Tx, f *sessiond.TOTPFactor, now time.Time) error {
		if !f.Active() {
			return errNoFactor
		}
		var err error
		codes, err = newRecoveryCodes(tx, p.UserID, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// mfaRequired opens a login's second-factor step in tx: the challenge
// behind a fresh mfa_token, and the answer that hands the token out.
func mfaRequired(tx sessiond.Tx, userID string, methods []string, now time.Time) (*sessiond.Error, error) {
	tok, hash := newAccountToken()
	c := &sessiond.MFAChallenge{Hash: hash, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(sessiond.MFAChallengeTTL)}
	if err := tx.InsertMFAChallenge(c); err != nil {
		return nil, err
	}
	return &sessiond.Error{
		Code:    sessiond.CodeMFARequired,
		Message: "a second factor is needed: finish with POST /v1/login/mfa",
		Extra:   map[string]any{"mfa_token": tok, "methods": methods},
	}, nil
}

// LoginMFA finishes a login with a second factor. The code counts on the
// login throttle's counters like a password; every try spends one of the
// mfa_token's attempts, the last wrong one voids it, and a right one
// deletes it and opens the session (cap, eviction, session.created with
// data.method mfa) in the same transaction.
func (s *Service) LoginMFA(ctx context.Context, tok string, in sessiond.SecondFactor, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
	hash, ok := accountTokenHash(tok)
	if !ok {
		return nil, errMFAToken
	}
	// The request that completes the login is the one whose proof binds
	// the session.
	jkt, err := s.bindingKey(ctx, c)
	if err != nil {
		return nil, err
	}
	var assertion *sessiond.PasskeyAssertion
	if in.Passkey() {
		var err error
		if assertion, err = s.parseAssertion(in.Credential); err != nil {
			return nil, err
		}
	}
	var userID string
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		ch, err := tx.MFAChallenge(hash, s.now())
		if err != nil {
			return err
		}
		if ch == nil {
			return errMFAToken
		}
		userID = ch.UserID
		return nil
	})
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, userID)
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return nil, errMFAToken
	}
	if err != nil {
		return nil, err
	}
	device := s.deviceID(c.DeviceToken, u.Email, s.now())
	counts, err := s.reserve(ctx, s.loginLimits(u.Email, c.IP, device), sessiond.CodeTooManyAttempts, "too many failed logins; try again later")
	if err != nil {
		return nil, err
	}

	now := s.now()
	o := origin(c)
	sess := &sessiond.Session{
		ID: sessiond.NewID(), UserID: u.ID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(s.policy.SessionTTL), UserAgent: o.UserAgent, IP: c.IP,
		AuthTime: now, DPoPJKT: jkt,
	}
	rt, rtHash, err := s.refresher.Mint(sess.ID)
	if err != nil {
		s.release(ctx, counts)
		return nil, err
	}
	sess.RefreshHash = rtHash
	var evicted []string
	wrong := error(nil) // the answer to a wrong factor
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		evicted, wrong = nil, nil
		if _, err := tx.LockUser(u.ID); err != nil {
			return err
		}
		ch, err := tx.SpendMFAAttempt(hash, now, sessiond.MFAChallengeAttempts)
		if err != nil {
			return err
		}
		if ch == nil || ch.UserID != u.ID {
			return errMFAToken
		}
		var method string
		if assertion != nil {
			var amr []string
			method, amr, wrong, err = s.spendPasskey(tx, in.ChallengeID, sessiond.PasskeySecondFactor, u.ID, mfaBinding(hash), assertion, now)
			sess.AMR = append([]string{"pwd"}, amr...)
		} else {
			f, ferr := tx.TOTPFactor(u.ID)
			if ferr != nil {
				return ferr
			}
			if !f.Active() { // turned off since the password step
				return errMFAToken
			}
			method, err = s.spendFactor(tx, f, in, now)
			sess.AMR = []string{"pwd", amrOTP}
			if err == nil && method == "" {
				wrong = errWrongCode
			}
		}
		if err != nil {
			return err
		}
		if wrong != nil {
			if ch.Attempts >= sessiond.MFAChallengeAttempts {
				_, err = tx.DeleteMFAChallenge(hash)
			}
			return err // nil: the spent attempt must commit
		}
		if deleted, err := tx.DeleteMFAChallenge(hash); err != nil || !deleted {
			if err == nil {
				err = errMFAToken
			}
			return err
		}
		created := o.event(sessiond.EventSessionCreated, u.ID, sess.ID, map[string]any{"method": sessiond.MethodMFA, "factor": method})
		_, evicted, err = openSessionEvent(tx, sess, now, s.policy, created, o)
		return err
	})
	switch {
	case wrong != nil && err == nil:
		reason := "wrong_code"
		if assertion != nil {
			reason = "wrong_passkey"
		}
		s.loginFailed(ctx, u, c, reason)
		return nil, wrong
	case err != nil:
		if code := sessiond.ErrorCode(err); code == sessiond.CodeAccountDisabled {
			s.loginFailed(ctx, u, c, "account_disabled")
		}
		s.release(ctx, counts)
		return nil, err
	}
	if err := s.loginSucceeded(ctx, counts); err != nil {
		s.logger.WarnContext(ctx, "login attempts not cleared", "error", err.Error())
	}
	s.evictedAtLogin(ctx, u.ID, evicted)
	t, err := s.tokens(sess, rt, now)
	if err != nil {
		return nil, err
	}
	t.DeviceToken, t.DeviceExpiresAt = s.issueDeviceToken(u.Email, now)
	return t, nil
}

// spendPasskey is the passkey's counterpart of spendFactor: in tx, with
// the user locked, it consumes the challenge id of kind, which must be
// userID's and bound to bound, and checks the assertion a against it as a
// proof by one of the user's passkeys (usePasskey). It returns the
// factor's method and amr, or wrong, the client's error, when the
// challenge or the assertion does not prove it; the consumed challenge
// and the passkey's counter are to commit either way.
func (s *Service) spendPasskey(tx sessiond.Tx, challengeID, kind, userID, bound string, a *sessiond.PasskeyAssertion, now time.Time) (method string, amr []string, wrong, err error) {
	key, ok := challengeKey(challengeID)
	if !ok {
		return "", nil, errProofChallenge, nil
	}
	ch, err := tx.ConsumePasskeyChallenge(key, kind, now)
	if err != nil {
		return "", nil, nil, err
	}
	if ch == nil || ch.UserID != userID || ch.SessionID != bound {
		return "", nil, errProofChallenge, nil
	}
	proof, err := s.usePasskey(tx, ch.State, a, userID, now)
	if err != nil {
		return "", nil, nil, err
	}
	if proof.refused != nil {
		return "", nil, proof.refused, nil
	}
	return sessiond.MFAMethodPasskey, PasskeyAMR(proof.pk.BackupEligible, proof.userVerified), nil, nil
}

// StepUp proves the principal's second factor again: the session's auth
// time becomes now and its amr gains otp (or, for a passkey, hwk or swk,
// and user if the authenticator verified its user), so that sensitive
// changes that need a recent sign-in, or a second factor, go through. A
// wrong code or passkey counts on the user's code limit.
func (s *Service) StepUp(ctx context.Context, p *sessiond.Principal, in sessiond.SecondFactor, c sessiond.ClientInfo) error {
	var assertion *sessiond.PasskeyAssertion
	if in.Passkey() {
		var err error
		if assertion, err = s.parseAssertion(in.Credential); err != nil {
			return err
		}
	}
	var refused error
	err := s.withCodeLimit(ctx, p.UserID, func() (bool, error) {
		now := s.now()
		err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
			refused = nil
			if _, err := tx.LockUser(p.UserID); err != nil {
				return err
			}
			sess, err := tx.SessionByID(p.SessionID)
			if err != nil {
				return err
			}
			if sess == nil || sess.UserID != p.UserID {
				return sessiond.Errorf(sessiond.CodeInvalidToken, "the session of this token has ended")
			}
			var gained []string
			if assertion != nil {
				_, gained, refused, err = s.spendPasskey(tx, in.ChallengeID, sessiond.PasskeyReauth, p.UserID, p.SessionID, assertion, now)
			} else {
				f, ferr := tx.TOTPFactor(p.UserID)
				if ferr != nil {
					return ferr
				}
				if !f.Active() {
					return errNoFactor
				}
				var method string
				method, err = s.spendFactor(tx, f, in, now)
				gained = []string{amrOTP}
				if err == nil && method == "" {
					refused = errWrongCode
				}
			}
			if err != nil || refused != nil {
				return err // nil for a refused proof: what it spent must commit
			}
			amr := slices.Clone(sess.AMR)
			for _, m := range gained {
				if !slices.Contains(amr, m) {
					amr = append(amr, m)
				}
			}
			_, err = tx.SetSessionAuth(p.UserID, p.SessionID, amr, now)
			return err
		})
		return refused != nil, err
	})
	if err == errWrongCode && refused != nil {
		return refused
	}
	return err
}
