package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// passkeyMFAToken logs in with the password and returns the mfa_token of
// the mfa_required answer, whose methods must be want.
func (e *testEnv) passkeyMFAToken(email string, want ...string) string {
	e.t.Helper()
	r := loginWith(e, email, testPassword).want(e.t, 403, "mfa_required")
	var methods []string
	for _, m := range r.Body["methods"].([]any) {
		methods = append(methods, m.(string))
	}
	if !slices.Equal(methods, want) || len(r.str("mfa_token")) < 43 {
		e.t.Fatalf("mfa_required: got %s, want an mfa_token and methods %v", r.Raw, want)
	}
	return r.str("mfa_token")
}

// beginSecondFactor begins the passkey step of the login of tok.
func (e *testEnv) beginSecondFactor(tok string) (string, map[string]any) {
	e.t.Helper()
	return ceremonyOptions(e.t, e.call("POST", "/v1/login/passkey/begin", map[string]string{"mfa_token": tok}, "").want(e.t, 200, ""))
}

func allowedIDs(opts map[string]any) []string {
	var ids []string
	list, _ := opts["allowCredentials"].([]any)
	for _, c := range list {
		ids = append(ids, c.(map[string]any)["id"].(string))
	}
	return ids
}

// TestPasskeySecondFactor: a password login of a user with a passkey
// answers mfa_required with methods [passkey]; the passkey step's options
// allow only that user's credentials and prefer user verification; a
// passkey answer finishes the login with amr pwd+hwk (user added when the
// authenticator verified its user), recorded as session.created method
// mfa, factor passkey; a wrong passkey is refused, counts as one of the
// mfa_token's attempts and as login.failed, and the last voids the token;
// a challenge not begun for this mfa_token does not finish it.
func TestPasskeySecondFactor(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		b := newSoftAuthenticator(t, testOrigin, testRPID)
		b.be, b.bs = true, true
		e.registerPasskey(b, s.AT, "").want(t, 201, "")
		e.signup("bob@example.com")
		bob := e.login("bob@example.com")
		other := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(other, bob.AT, "").want(t, 201, "")

		tok := e.passkeyMFAToken("ada@example.com", "passkey")
		id, opts := e.beginSecondFactor(tok)
		want := []string{b64.EncodeToString(a.credID), b64.EncodeToString(b.credID)}
		if got := allowedIDs(opts); !slices.Equal(got, want) || opts["userVerification"] != "preferred" || opts["rpId"] != testRPID {
			t.Fatalf("second-factor options: got %v, want allowCredentials %v, userVerification preferred", opts, want)
		}

		// A security key without a PIN is enough beside the password.
		a.uv = false
		a.counter = 1
		r := e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id, "credential": a.get(opts)}, "").want(t, 200, "")
		if got := amrOf(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "hwk"}) {
			t.Errorf("amr: got %v, want [pwd hwk]", got)
		}
		ev := e.lastEvent("ada@example.com", sessiond.EventSessionCreated)
		if ev.Data["method"] != sessiond.MethodMFA || ev.Data["factor"] != "passkey" || ev.SessionID != r.str("session_id") {
			t.Errorf("session.created: got %+v, want method mfa, factor passkey, this session", ev)
		}
		// The token is spent.
		e.call("POST", "/v1/login/passkey/begin", map[string]string{"mfa_token": tok}, "").want(t, 401, "invalid_token")

		// A synced passkey that verified its user.
		tok = e.passkeyMFAToken("ada@example.com", "passkey")
		id, opts = e.beginSecondFactor(tok)
		b.counter = 1
		r = e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id, "credential": b.get(opts)}, "").want(t, 200, "")
		if got := amrOf(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "swk", "user"}) {
			t.Errorf("amr: got %v, want [pwd swk user]", got)
		}

		// Wrong answers, each refused and counted.
		sessionsBefore := len(e.liveSessions("ada@example.com"))
		tok = e.passkeyMFAToken("ada@example.com", "passkey")
		wrong := []struct {
			name string
			body func() map[string]any
		}{
			{"another user's passkey", func() map[string]any {
				id, opts := e.beginSecondFactor(tok)
				other.counter++
				return map[string]any{"challenge_id": id, "credential": other.get(opts)}
			}},
			{"unregistered credential", func() map[string]any {
				id, opts := e.beginSecondFactor(tok)
				stray := newSoftAuthenticator(t, testOrigin, testRPID)
				stray.userHandle = a.userHandle
				return map[string]any{"challenge_id": id, "credential": stray.get(opts)}
			}},
			{"usernameless challenge", func() map[string]any {
				id, opts := e.beginPasskeyLogin()
				a.counter++
				return map[string]any{"challenge_id": id, "credential": a.get(opts)}
			}},
			{"another mfa_token's challenge", func() map[string]any {
				id, opts := e.beginSecondFactor(e.passkeyMFAToken("ada@example.com", "passkey"))
				a.counter++
				return map[string]any{"challenge_id": id, "credential": a.get(opts)}
			}},
		}
		for _, w := range wrong {
			body := w.body()
			body["mfa_token"] = tok
			e.call("POST", "/v1/login/mfa", body, "").want(t, 401, "invalid_credentials")
		}
		var reasons int
		for _, ev := range e.userEvents("ada@example.com") {
			if ev.Type == sessiond.EventLoginFailed && ev.Data["reason"] == "wrong_passkey" {
				reasons++
			}
		}
		if reasons != len(wrong) {
			t.Errorf("login.failed wrong_passkey: got %d, want %d", reasons, len(wrong))
		}
		// The fifth wrong answer is the token's last attempt.
		for range sessiond.MFAChallengeAttempts - len(wrong) {
			id, opts := e.beginSecondFactor(tok)
			other.counter++
			e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id, "credential": other.get(opts)}, "").want(t, 401, "invalid_credentials")
		}
		e.call("POST", "/v1/login/passkey/begin", map[string]string{"mfa_token": tok}, "").want(t, 401, "invalid_token")
		if got := len(e.liveSessions("ada@example.com")); got != sessionsBefore {
			t.Errorf("live sessions after wrong passkeys: got %d, want %d", got, sessionsBefore)
		}

		// Bodies that are no proof at all are told so, and spend nothing.
		tok = e.passkeyMFAToken("ada@example.com", "passkey")
		id, opts = e.beginSecondFactor(tok)
		e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id}, "").want(t, 400, "invalid_request")
		e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id, "code": "123456", "credential": map[string]any{"id": "x"}}, "").want(t, 400, "invalid_request")
		e.call("POST", "/v1/login/passkey/begin", map[string]string{"mfa_token": "short"}, "").want(t, 401, "invalid_token")
		a.counter++
		a.uv = true
		r = e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id, "credential": a.get(opts)}, "").want(t, 200, "")
		if got := amrOf(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "hwk", "user"}) {
			t.Errorf("amr: got %v, want [pwd hwk user]", got)
		}

		// The usernameless login is unchanged beside it.
		a.counter++
		e.passkeyLogin(a).want(t, 200, "")
	})
}

// TestPasskeyAndTOTPMethods: a user with TOTP and a passkey is offered all
// three methods, and each finishes the login; a session the passkey
// finished counts as one that gave a second factor.
func TestPasskeyAndTOTPMethods(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		secret, codes := e.enrolTOTP(s.AT)
		all := []string{"totp", "recovery_code", "passkey"}

		r := e.loginMFA(e.passkeyMFAToken("ada@example.com", all...), map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
		if got := amrOf(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("amr with a code: got %v, want [pwd otp]", got)
		}
		e.loginMFA(e.passkeyMFAToken("ada@example.com", all...), map[string]string{"recovery_code": codes[0]}).want(t, 200, "")
		tok := e.passkeyMFAToken("ada@example.com", all...)
		id, opts := e.beginSecondFactor(tok)
		a.counter = 1
		r = e.call("POST", "/v1/login/mfa", map[string]any{"mfa_token": tok, "challenge_id": id, "credential": a.get(opts)}, "").want(t, 200, "")
		if got := amrOf(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "hwk", "user"}) {
			t.Errorf("amr with a passkey: got %v, want [pwd hwk user]", got)
		}
		// The passkey was this session's second factor: changing the
		// second factors needs no code.
		e.call("POST", "/v1/mfa/recovery-codes", nil, r.str("access_token")).want(t, 200, "")
	})
}

// TestReauthenticateWithPasskey: past the reauthentication window a
// sensitive passkey change is refused; a passkey assertion for a challenge
// of POST /v1/passkeys/reauthenticate/begin (options for the user's
// credentials) stamps a newer auth time and adds hwk to the session's amr,
// and the change passes. A challenge of another session, another user's
// passkey, or a challenge used twice does not reauthenticate.
func TestReauthenticateWithPasskey(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		e.signup("bob@example.com")
		s := e.login("ada@example.com")
		other := e.login("ada@example.com") // another session of the same user
		e.call("POST", "/v1/passkeys/reauthenticate/begin", nil, s.AT).want(t, 404, "not_found")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		spare := newSoftAuthenticator(t, testOrigin, testRPID)
		pkID := e.registerPasskey(spare, s.AT, "Spare").want(t, 201, "").str("passkey_id")
		bob := e.login("bob@example.com")
		bobKey := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(bobKey, bob.AT, "").want(t, 201, "")
		before := e.sessionRow(t, s.SID).AuthTimeOrCreated()

		e.clock.Advance(e.cfg.ReauthWindow + time.Second)
		e.call("DELETE", "/v1/passkeys/"+pkID, nil, s.AT).want(t, 403, "reauthentication_required")

		id, opts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/reauthenticate/begin", nil, s.AT).want(t, 200, ""))
		want := []string{b64.EncodeToString(a.credID), b64.EncodeToString(spare.credID)}
		if got := allowedIDs(opts); !slices.Equal(got, want) || opts["userVerification"] != "preferred" {
			t.Fatalf("reauthentication options: got %v, want allowCredentials %v", opts, want)
		}

		// Refusals first: none stamps the session.
		oid, oopts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/reauthenticate/begin", nil, other.AT).want(t, 200, ""))
		a.counter++
		e.call("POST", "/v1/reauthenticate", map[string]any{"challenge_id": oid, "credential": a.get(oopts)}, s.AT).want(t, 401, "invalid_credentials")
		bid, bopts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/reauthenticate/begin", nil, s.AT).want(t, 200, ""))
		bobKey.counter++
		e.call("POST", "/v1/reauthenticate", map[string]any{"challenge_id": bid, "credential": bobKey.get(bopts)}, s.AT).want(t, 401, "invalid_credentials")
		e.call("POST", "/v1/reauthenticate", map[string]any{"challenge_id": id, "password": testPassword, "credential": map[string]any{"id": "x"}}, s.AT).want(t, 400, "invalid_request")
		e.call("DELETE", "/v1/passkeys/"+pkID, nil, s.AT).want(t, 403, "reauthentication_required")

		a.counter++
		body := map[string]any{"challenge_id": id, "credential": a.get(opts)}
		e.call("POST", "/v1/reauthenticate", body, s.AT).want(t, 204, "")
		e.call("POST", "/v1/reauthenticate", body, s.AT).want(t, 401, "invalid_credentials") // used

		sess := e.sessionRow(t, s.SID)
		if !slices.Equal(sess.AMR, []string{"pwd", "hwk", "user"}) {
			t.Errorf("session amr: got %v, want [pwd hwk user]", sess.AMR)
		}
		if !sess.AuthTime.After(before) {
			t.Errorf("auth time: got %v, want after %v", sess.AuthTime, before)
		}
		e.call("DELETE", "/v1/passkeys/"+pkID, nil, s.AT).want(t, 204, "")
	})
}

// sessionRow is the session sid as the store holds it.
func (e *testEnv) sessionRow(t *testing.T, sid string) *sessiond.Session {
	t.Helper()
	var sess *sessiond.Session
	err := e.app.Store.Tx(context.Background(), func(tx sessiond.Tx) error {
		var err error
		sess, err = tx.SessionByID(sid)
		return err
	})
	if err != nil || sess == nil {
		t.Fatalf("session %s: %v, %v", sid, sess, err)
	}
	return sess
}

// TestPasskeySecondFactorConcurrent: of concurrent finishes of one
// passkey step, exactly one opens a session.
func TestPasskeySecondFactorConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		before := len(e.liveSessions("ada@example.com"))
		tok := e.passkeyMFAToken("ada@example.com", "passkey")
		id, opts := e.beginSecondFactor(tok)
		a.counter = 1
		body := map[string]any{"mfa_token": tok, "challenge_id": id, "credential": a.get(opts)}
		const n = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range n {
			wg.Go(func() {
				r := e.call("POST", "/v1/login/mfa", body, "")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.Status == 200:
					ok++
				case r.Status == 401 && (r.str("code") == "invalid_credentials" || r.str("code") == "invalid_token"):
				default:
					t.Errorf("concurrent finish: got %d %s", r.Status, r.Raw)
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d concurrent finishes: %d signed in, want 1", n, ok)
		}
		if got := len(e.liveSessions("ada@example.com")); got != before+1 {
			t.Errorf("live sessions: got %d, want %d", got, before+1)
		}
	})
}
