package auth

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// The changes a signed-in user makes to their own account: password,
// address, deleting it, and reauthenticating before such a change. Each
// takes the current password, checked on the login throttle's counters,
// so that a stolen access token is no oracle for guessing it.

var errWrongPassword = sessiond.Errorf(sessiond.CodeInvalidCredentials, "the password is incorrect")

// confirmPassword checks that pw is the password of u, the principal's
// user, reserving the attempt on the counters a login for u's address
// from c reserves, before any hashing. A success clears the pair, as a
// login's does; a wrong password is a failure on them.
func (s *Service) confirmPassword(ctx context.Context, u *sessiond.User, pw string, c sessiond.ClientInfo) error {
	pw = normalizePassword(pw)
	device := s.deviceID(c.DeviceToken, u.Email, s.now())
	counts, err := s.reserve(ctx, s.loginLimits(u.Email, c.IP, device), sessiond.CodeTooManyAttempts, "too many wrong passwords; try again later")
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil {
		s.release(ctx, counts) // the hashing slots were busy: no guess
		return err
	}
	if !ok {
		return errWrongPassword
	}
	return s.loginSucceeded(ctx, counts)
}

// ChangePassword checks the current password and the new one, hashes the
// new one before the transaction (which must not hold the user's lock
// that long), and then in one transaction sets it, voids the user's
// unused reset links (the change supersedes them), ends every session of
// the user but the principal's, and records password.changed with the
// notice mail to the user's address.
func (s *Service) ChangePassword(ctx context.Context, p *sessiond.Principal, current, newPassword string, c sessiond.ClientInfo) error {
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	newPassword = normalizePassword(newPassword)
	if err := s.checkPassword(newPassword, u.Email); err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, current, c); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return err
	}
	now := s.now()
	o := origin(c)
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := tx.LockUser(p.UserID)
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return errUserGone
		}
		if err != nil {
			return err
		}
		if err := tx.SetPasswordHash(u.ID, hash); err != nil {
			return err
		}
		if err := tx.DeleteAccountTokens(u.ID, sessiond.TokenResetPassword); err != nil {
			return err
		}
		if err := endOthers(tx, now, o, u.ID, p.SessionID, sessiond.EndPasswordChanged); err != nil {
			return err
		}
		id, err := recordID(tx, now, o.event(sessiond.EventPasswordChanged, u.ID, p.SessionID, nil))
		if err != nil {
			return err
		}
		return s.mailNotice(tx, now, AccountMail{Kind: MailPasswordChanged, To: u.Email, At: now}, id)
	})
	if err != nil {
		return err
	}
	s.mailQueued()
	return nil
}

var errSessionEnded = sessiond.Errorf(sessiond.CodeInvalidToken, "the session of this token has ended")

var errUserGone = sessiond.Errorf(sessiond.CodeInvalidToken, "the user of this token no longer exists")

// endOthers ends every session of the user but keep, recording a
// session.ended with reason for each.
func endOthers(tx sessiond.Tx, now time.Time, o Origin, userID, keep, reason string) error {
	sessions, err := tx.SessionsForEviction(userID)
	if err != nil {
		return err
	}
	var ids []string
	for _, sess := range sessions {
		if sess.ID != keep {
			ids = append(ids, sess.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ended, err := tx.DeleteSessions(ids)
	if err != nil {
		return err
	}
	return o.ended(tx, now, userID, ended, reason)
}

// ChangeEmail checks the password and, in one transaction, writes a
// change_email token for the new address, its verification mail to the
// new address, the notice to the current one and the event
// email.verification_sent. The address changes only when the token comes
// back (VerifyEmail). A new address that another account has, or whose
// mail limit is reached, gets no mail and no token; the answer is the
// same, so it reveals nothing, and the event says why in data.suppressed
// for operators.
func (s *Service) ChangeEmail(ctx context.Context, p *sessiond.Principal, pw, newEmail string, c sessiond.ClientInfo) error {
	newEmail = NormalizeEmail(newEmail)
	if err := validateEmail(newEmail); err != nil {
		return err
	}
	if err := s.reserveMailIP(ctx, c.IP); err != nil {
		return err
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, pw, c); err != nil {
		return err
	}
	if newEmail == u.Email {
		return sessiond.Errorf(sessiond.CodeInvalidEmail, "that is the account's address already")
	}
	send, err := s.reserveMail(ctx, newEmail)
	if err != nil {
		return err
	}
	suppressed := ""
	switch _, err := s.store.UserByEmail(ctx, newEmail); {
	case err == nil:
		suppressed = "email_taken"
	case sessiond.ErrorCode(err) != sessiond.CodeNotFound:
		return err
	case !send:
		suppressed = "mail_limit"
	}
	now := s.now()
	o := origin(c)
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := tx.LockUser(p.UserID)
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return errUserGone
		}
		if err != nil {
			return err
		}
		var data map[string]any
		if suppressed != "" {
			data = map[string]any{"suppressed": suppressed}
		}
		id, err := recordID(tx, now, o.event(sessiond.EventEmailVerificationSent, u.ID, p.SessionID, data))
		if err != nil {
			return err
		}
		if suppressed == "" {
			if err := s.mailChangeToken(tx, now, u, newEmail, id); err != nil {
				return err
			}
		}
		return s.mailNotice(tx, now, AccountMail{Kind: MailEmailChanged, To: u.Email, NewEmail: MaskEmail(newEmail), At: now}, id)
	})
	if err != nil {
		return err
	}
	s.mailQueued()
	return nil
}

// mailChangeToken writes a change_email token of u for newEmail, which
// supersedes u's older one, and the outbox row of its mail to newEmail,
// caused by the event eventID.
func (s *Service) mailChangeToken(tx sessiond.Tx, now time.Time, u *sessiond.User, newEmail, eventID string) error {
	if s.accounts.Mail == nil {
		return sessiond.Internal("account mail", errNoMailComposer)
	}
	tok, hash := newAccountToken()
	t := &sessiond.AccountToken{
		Hash: hash, Kind: sessiond.TokenChangeEmail, UserID: u.ID, Email: u.Email, NewEmail: newEmail,
		CreatedAt: now, ExpiresAt: now.Add(s.accounts.VerifyTTL),
	}
	if err := tx.InsertAccountToken(t); err != nil {
		return err
	}
	msg, err := s.accounts.Mail(AccountMail{Kind: sessiond.TokenChangeEmail, To: newEmail, Token: tok, ExpiresAt: t.ExpiresAt}, eventID, now)
	if err != nil {
		return sessiond.Internal("compose account mail", err)
	}
	return tx.InsertOutbox(msg)
}

// MaskEmail shows enough of an address for its owner to recognise it and
// not enough to give it away to whoever reads the mail it appears in: the
// local part's first character and the domain ("n…@example.com").
func MaskEmail(email string) string {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "…"
	}
	r := []rune(local)
	return string(r[0]) + "…@" + domain
}

// confirmEmailChange applies a consumed change_email token t to its user
// u (locked): the address becomes t.NewEmail, confirmed, and the user's
// other unused tokens, all made for the old address, are voided.
// CodeEmailTaken if another account has the address by now, which rolls
// the transaction back with the token unspent.
func confirmEmailChange(tx sessiond.Tx, now time.Time, o Origin, u *sessiond.User, t *sessiond.AccountToken) error {
	if err := tx.SetEmail(u.ID, t.NewEmail, true); err != nil {
		if sessiond.ErrorCode(err) == sessiond.CodeEmailTaken {
			return sessiond.Errorf(sessiond.CodeEmailTaken, "another account has this address by now")
		}
		return err
	}
	for _, kind := range []string{sessiond.TokenVerifyEmail, sessiond.TokenResetPassword, sessiond.TokenChangeEmail} {
		if err := tx.DeleteAccountTokens(u.ID, kind); err != nil {
			return err
		}
	}
	if err := record(tx, now, o.event(sessiond.EventEmailVerified, u.ID, "", nil)); err != nil {
		return err
	}
	changed := map[string]any{"email": true}
	if !u.EmailVerified {
		changed["email_verified"] = true
	}
	return record(tx, now, o.event(sessiond.EventUserUpdated, u.ID, "", changed))
}

// DeleteAccount checks the password and deletes the principal's user as
// an operator's delete does (deleteUser), in one transaction.
func (s *Service) DeleteAccount(ctx context.Context, p *sessiond.Principal, pw string, c sessiond.ClientInfo) error {
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if err := s.confirmPassword(ctx, u, pw, c); err != nil {
		return err
	}
	now := s.now()
	o := origin(c)
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error { return deleteUser(tx, now, o, u.ID) })
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return errUserGone
	}
	return err
}

// deleteUser removes the user and everything of theirs in tx: their
// sessions end (reason user_deleted), their tokens go with them, and so
// does every mail to them or about them not yet erased, whose body holds
// tokens and addresses; then user.deleted. The events stay, as the audit
// trail. CodeNotFound.
func deleteUser(tx sessiond.Tx, now time.Time, o Origin, id string) error {
	u, err := tx.LockUser(id)
	if err != nil {
		return err
	}
	if _, err := o.endAll(tx, now, id, sessiond.EndUserDeleted); err != nil {
		return err
	}
	if _, err := tx.DeleteUserMail(id, u.Email); err != nil {
		return err
	}
	if err := tx.DeleteUser(id); err != nil {
		return err
	}
	return record(tx, now, o.event(sessiond.EventUserDeleted, id, "", nil))
}

var errNoReauthProof = sessiond.Errorf(sessiond.CodeInvalidRequest, "give exactly one of password, code, or a passkey's challenge_id and credential")

// Reauthenticate checks the proof and stamps the principal's session's
// auth time with now, which Authenticate reads at once and the next
// refresh puts in the access token's auth_time.
func (s *Service) Reauthenticate(ctx context.Context, p *sessiond.Principal, r sessiond.Reauth, c sessiond.ClientInfo) error {
	passkey := r.ChallengeID != "" || len(r.Credential) > 0
	proofs := 0
	for _, given := range []bool{r.Password != "", r.Code != "", passkey} {
		if given {
			proofs++
		}
	}
	if proofs != 1 {
		return errNoReauthProof
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return err
	}
	if r.Code != "" || passkey {
		// A code or a passkey is a second factor's proof: the step-up of
		// mfa.go, which also adds it to the session's amr.
		return s.StepUp(ctx, p, sessiond.SecondFactor{Code: r.Code, ChallengeID: r.ChallengeID, Credential: r.Credential}, c)
	}
	if err := s.confirmPassword(ctx, u, r.Password, c); err != nil {
		return err
	}
	now := s.now()
	return s.store.Tx(ctx, func(tx sessiond.Tx) error {
		sess, err := tx.SessionByID(p.SessionID)
		if err != nil {
			return err
		}
		if sess == nil || sess.UserID != p.UserID {
			return errSessionEnded
		}
		amr := sess.AMR
		if !slices.Contains(amr, "pwd") {
			amr = append(slices.Clone(amr), "pwd")
		}
		ok, err := tx.SetSessionAuth(p.UserID, p.SessionID, amr, now)
		if err != nil {
			return err
		}
		if !ok {
			return errSessionEnded
		}
		return nil
	})
}

// signupQuietly is Signup when addresses must be confirmed: it answers
// alike, after the same work, whether the address is new or taken, so
// that signup tells no one which addresses have accounts. A new address
// gets its user and the verification mail; an existing one, a mail to its
// owner: a new verification link if the address is still unconfirmed
// (the only way to get one without being able to sign in), else "you
// already have an account", within the address's mail limit. Both hash
// the password (the existing path into nothing) and run a transaction of
// about as many statements.
func (s *Service) signupQuietly(ctx context.Context, email, pw string, c sessiond.ClientInfo, counts []sessiond.AttemptCount) error {
	existing, err := s.store.UserByEmail(ctx, email)
	if err != nil && sessiond.ErrorCode(err) != sessiond.CodeNotFound {
		s.release(ctx, counts)
		return err
	}
	// Both paths count a mail against the address: a new one's counter is
	// fresh, so its verification mail always goes.
	send, err := s.reserveMail(ctx, email)
	if err != nil {
		s.release(ctx, counts)
		return err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		s.release(ctx, counts)
		return err
	}
	now := s.now()
	o := origin(c)
	queued := false
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		queued = false
		if existing == nil {
			u := &sessiond.User{ID: sessiond.NewID(), Email: email, PasswordHash: hash, CreatedAt: now}
			if err := tx.InsertUser(u); err != nil {
				return err
			}
			if err := record(tx, now, o.event(sessiond.EventUserCreated, u.ID, "", nil)); err != nil {
				return err
			}
			queued = s.accounts.Mail != nil
			if !queued {
				return nil
			}
			return s.mailToken(tx, now, o, u, sessiond.TokenVerifyEmail, sessiond.EventEmailVerificationSent)
		}
		u, err := tx.LockUser(existing.ID)
		switch {
		case sessiond.ErrorCode(err) == sessiond.CodeNotFound || (err == nil && (!send || u.Disabled || s.accounts.Mail == nil)):
			return padMailToken(tx, now)
		case err != nil:
			return err
		case !u.EmailVerified:
			queued = true
			return s.mailToken(tx, now, o, u, sessiond.TokenVerifyEmail, sessiond.EventEmailVerificationSent)
		}
		if err := padMailToken(tx, now); err != nil {
			return err
		}
		queued = true
		// No change to record: the mail's row names an event id no event
		// has, unique as the outbox needs it to be.
		return s.mailNotice(tx, now, AccountMail{Kind: MailAccountExists, To: u.Email}, sessiond.NewEventID(now))
	})
	if sessiond.ErrorCode(err) == sessiond.CodeEmailTaken {
		// Taken between the look-up and the insert by a concurrent
		// signup: the same answer as for any existing address.
		return nil
	}
	if err != nil {
		s.release(ctx, counts)
		return err
	}
	if queued {
		s.mailQueued()
	}
	return nil
}
