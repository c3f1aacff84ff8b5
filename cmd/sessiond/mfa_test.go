package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// totpCode is the code of secret at the env's current time plus offset.
func (e *testEnv) totpCode(secret string, offset time.Duration) string {
	e.t.Helper()
	code, err := totp.GenerateCode(secret, e.clock.Now().Add(offset))
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

// nextStep moves the clock into the next TOTP step, so that a new code is
// not a replay of the last one.
func (e *testEnv) nextStep() { e.clock.Advance(30 * time.Second) }

// enrolTOTP turns TOTP on for the session at and returns the secret and
// the recovery codes.
func (e *testEnv) enrolTOTP(at string) (string, []string) {
	e.t.Helper()
	r := e.call("POST", "/v1/mfa/totp", nil, at).want(e.t, 200, "")
	secret := r.str("secret")
	if secret == "" || !strings.HasPrefix(r.str("otpauth_url"), "otpauth://totp/sessiond:") ||
		!strings.Contains(r.str("otpauth_url"), "secret="+secret) || !strings.HasPrefix(r.str("qr_code"), "data:image/png;base64,") {
		e.t.Fatalf("begin: got %.300s, want secret, otpauth_url with it, qr_code", r.Raw)
	}
	r = e.call("POST", "/v1/mfa/totp/confirm", map[string]string{"code": e.totpCode(secret, 0)}, at).want(e.t, 200, "")
	var codes []string
	for _, c := range r.Body["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 {
		e.t.Fatalf("confirm: got %d recovery codes, want 10", len(codes))
	}
	e.nextStep()
	return secret, codes
}

// mfaToken logs in with the password and returns the mfa_token of the
// mfa_required answer.
func (e *testEnv) mfaToken(email string) string {
	e.t.Helper()
	r := loginWith(e, email, testPassword).want(e.t, 403, "mfa_required")
	tok := r.str("mfa_token")
	methods, _ := r.Body["methods"].([]any)
	if len(tok) < 43 || len(methods) != 2 || methods[0] != "totp" || methods[1] != "recovery_code" {
		e.t.Fatalf("mfa_required: got %s, want an mfa_token and methods [totp recovery_code]", r.Raw)
	}
	return tok
}

func (e *testEnv) loginMFA(tok string, factor map[string]string) *response {
	e.t.Helper()
	body := map[string]string{"mfa_token": tok}
	for k, v := range factor {
		body[k] = v
	}
	return e.call("POST", "/v1/login/mfa", body, "")
}

func amrOf(t *testing.T, at string) []string {
	t.Helper()
	var out []string
	for _, v := range atClaims(t, at)["amr"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

// TestMFALoginWithTOTP: enrol, confirm, then a login answers mfa_required
// and opens no session; the code finishes it with amr pwd+otp, and the
// events say so.
func TestMFALoginWithTOTP(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		secret, _ := e.enrolTOTP(s.AT)

		tok := e.mfaToken("ada@example.com")
		if n := len(e.liveSessions("ada@example.com")); n != 1 {
			t.Fatalf("after the password step: got %d sessions, want 1 (no session before the second factor)", n)
		}
		r := e.loginMFA(tok, map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
		if got := amrOf(t, r.str("access_token")); !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("amr: got %v, want [pwd otp]", got)
		}
		if r.str("device_token") == "" || r.str("refresh_token") == "" {
			t.Errorf("token response %s: want a refresh and a device token", r.Raw)
		}
		e.call("GET", "/v1/me", nil, r.str("access_token")).want(t, 200, "")
		if n := len(e.liveSessions("ada@example.com")); n != 2 {
			t.Fatalf("after the second factor: got %d sessions, want 2", n)
		}
		// The refreshed token keeps the session's amr.
		rr := e.refresh(r.str("refresh_token")).want(t, 200, "")
		if got := amrOf(t, rr.str("access_token")); !slices.Equal(got, []string{"pwd", "otp"}) {
			t.Errorf("amr after refresh: got %v, want [pwd otp]", got)
		}
		want := []string{"user.created", "email.verification_sent", "session.created", "mfa.enabled", "session.created"}
		if got := e.eventTypes("ada@example.com"); !slices.Equal(got, want) {
			t.Errorf("events: got %v, want %v", got, want)
		}
		last := e.lastEvent("ada@example.com", "session.created")
		if last.Data["method"] != "mfa" || last.Data["factor"] != "totp" {
			t.Errorf("session.created data: got %v, want method mfa, factor totp", last.Data)
		}
	})
}

// TestMFACodes: wrong codes, a replayed code (the same step twice), and a
// code whose step is more than one from now are refused; the step after
// now is accepted (clock drift).
func TestMFACodes(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		secret, _ := e.enrolTOTP(e.login("ada@example.com").AT)

		tok := e.mfaToken("ada@example.com")
		code := e.totpCode(secret, 0)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		// Four wrong codes: the token's fifth attempt is still good.
		for _, c := range []string{wrong, "12345", e.totpCode(secret, -90*time.Second), e.totpCode(secret, 90*time.Second)} {
			e.loginMFA(tok, map[string]string{"code": c}).want(t, 401, "invalid_credentials")
		}
		e.loginMFA(tok, map[string]string{"code": code}).want(t, 200, "")

		// The same code again, on a fresh token, in the same step: a replay.
		e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"code": code}).want(t, 401, "invalid_credentials")

		// A code read now and typed after the clock moved on 90 s: expired.
		e.nextStep()
		late := e.totpCode(secret, 0)
		tok = e.mfaToken("ada@example.com")
		e.clock.Advance(90 * time.Second)
		e.loginMFA(tok, map[string]string{"code": late}).want(t, 401, "invalid_credentials")

		// The next step's code (the phone's clock a little ahead) works.
		e.loginMFA(tok, map[string]string{"code": e.totpCode(secret, 30*time.Second)}).want(t, 200, "")
		failed := 0
		for _, ev := range e.eventTypes("ada@example.com") {
			if ev == "login.failed:wrong_code" {
				failed++
			}
		}
		if failed != 6 {
			t.Errorf("got %d login.failed events, want 6 (one per wrong code)", failed)
		}
	})
}

// TestMFATokenLimits: an mfa_token finishes one login, allows five codes
// (the fifth wrong one voids it), and lives five minutes.
func TestMFATokenLimits(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		secret, _ := e.enrolTOTP(e.login("ada@example.com").AT)

		t.Run("single use", func(t *testing.T) {
			tok := e.mfaToken("ada@example.com")
			e.loginMFA(tok, map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
			e.nextStep()
			e.loginMFA(tok, map[string]string{"code": e.totpCode(secret, 0)}).want(t, 401, "invalid_token")
		})
		t.Run("five attempts", func(t *testing.T) {
			tok := e.mfaToken("ada@example.com")
			for range 4 {
				e.loginMFA(tok, map[string]string{"code": "000000x"}).want(t, 401, "invalid_credentials")
			}
			e.loginMFA(tok, map[string]string{"recovery_code": "aaaa-aaaa-aaaa-aaaa"}).want(t, 401, "invalid_credentials")
			e.loginMFA(tok, map[string]string{"code": e.totpCode(secret, 0)}).want(t, 401, "invalid_token")
		})
		t.Run("five minutes", func(t *testing.T) {
			e.nextStep()
			tok := e.mfaToken("ada@example.com")
			e.clock.Advance(5*time.Minute + time.Second)
			e.loginMFA(tok, map[string]string{"code": e.totpCode(secret, 0)}).want(t, 401, "invalid_token")
		})
		t.Run("not a token", func(t *testing.T) {
			e.loginMFA("nope", map[string]string{"code": "123456"}).want(t, 401, "invalid_token")
			e.call("POST", "/v1/login/mfa", map[string]string{"mfa_token": "x"}, "").want(t, 400, "invalid_request")
		})
	})
}

// TestMFARecoveryCodes: a recovery code finishes a login once, however
// many logins try it at the same time; a new set voids the old one.
func TestMFARecoveryCodes(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		_, codes := e.enrolTOTP(s.AT)

		const n = 6
		toks := make([]string, n)
		for i := range toks {
			toks[i] = e.mfaToken("ada@example.com")
		}
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range toks {
			wg.Go(func() {
				// Typed with other case and spacing: the same code.
				statuses[i] = e.loginMFA(toks[i], map[string]string{"recovery_code": strings.ToUpper(codes[0])}).Status
			})
		}
		wg.Wait()
		ok := 0
		for _, st := range statuses {
			switch st {
			case 200:
				ok++
			case 401:
			default:
				t.Errorf("got status %d, want 200 or 401", st)
			}
		}
		if ok != 1 {
			t.Fatalf("concurrent uses of one recovery code: %d succeeded, want exactly 1 (%v)", ok, statuses)
		}
		last := e.lastEvent("ada@example.com", "session.created")
		if last.Data["factor"] != "recovery_code" {
			t.Errorf("session.created data: got %v, want factor recovery_code", last.Data)
		}

		// A new set (the session gave no second factor: a code is needed).
		e.call("POST", "/v1/mfa/recovery-codes", nil, s.AT).want(t, 403, "reauthentication_required")
		r := e.call("POST", "/v1/mfa/recovery-codes", map[string]string{"recovery_code": codes[1]}, s.AT).want(t, 200, "")
		fresh := r.Body["recovery_codes"].([]any)
		e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"recovery_code": codes[2]}).want(t, 401, "invalid_credentials")
		e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"recovery_code": fresh[0].(string)}).want(t, 200, "")
	})
}

// TestMFAConcurrentCode: one TOTP code on several mfa_tokens at once
// finishes exactly one login.
func TestMFAConcurrentCode(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		secret, _ := e.enrolTOTP(e.login("ada@example.com").AT)
		const n = 5
		toks := make([]string, n)
		for i := range toks {
			toks[i] = e.mfaToken("ada@example.com")
		}
		code := e.totpCode(secret, 0)
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range toks {
			wg.Go(func() { statuses[i] = e.loginMFA(toks[i], map[string]string{"code": code}).Status })
		}
		wg.Wait()
		if ok := slices.Index(statuses, 200); ok < 0 || slices.Contains(statuses[ok+1:], 200) {
			t.Fatalf("concurrent uses of one code: statuses %v, want exactly one 200", statuses)
		}
	})
}

// TestMFACapUntouched: a user at the session cap starts several logins and
// finishes none: no session is evicted or added. Finishing one evicts as a
// login does.
func TestMFACapUntouched(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.MaxSessions = 2 })
		e.signup("ada@example.com")
		first := e.login("ada@example.com")
		secret, _ := e.enrolTOTP(first.AT)
		second := e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
		e.nextStep()
		ids := func() []string {
			var out []string
			for _, s := range e.liveSessions("ada@example.com") {
				out = append(out, s.ID)
			}
			slices.Sort(out)
			return out
		}
		before := ids()
		var toks []string
		for range 4 {
			toks = append(toks, e.mfaToken("ada@example.com"))
		}
		if after := ids(); !slices.Equal(after, before) {
			t.Fatalf("after unfinished logins: sessions %v, want %v unchanged", after, before)
		}
		e.loginMFA(toks[0], map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
		after := ids()
		if len(after) != 2 || slices.Contains(after, first.SID) || !slices.Contains(after, second.str("session_id")) {
			t.Fatalf("after finishing one: sessions %v, want the oldest (%s) evicted", after, first.SID)
		}
	})
}

// TestMFAStepUp: enrolment and changes need a recent sign-in; turning TOTP
// off and new recovery codes need a second factor as well.
func TestMFAStepUp(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		e.clock.Advance(e.cfg.ReauthWindow + time.Second)
		e.call("POST", "/v1/mfa/totp", nil, s.AT).want(t, 403, "reauthentication_required")
		s = e.login("ada@example.com")
		secret, codes := e.enrolTOTP(s.AT)
		e.call("POST", "/v1/mfa/totp", nil, s.AT).want(t, 400, "invalid_request")

		// Recent, with a second factor in the session.
		r := e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
		at := r.str("access_token")
		e.nextStep()
		e.clock.Advance(e.cfg.ReauthWindow + time.Second)
		for _, c := range []struct{ method, path string }{
			{"DELETE", "/v1/mfa/totp"}, {"POST", "/v1/mfa/recovery-codes"}, {"POST", "/v1/mfa/totp"},
		} {
			e.call(c.method, c.path, nil, at).want(t, 403, "reauthentication_required")
			e.call(c.method, c.path, map[string]string{"code": e.totpCode(secret, 0)}, at).want(t, 403, "reauthentication_required")
		}

		// Recent but password only: a code in the request is needed.
		s = e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"recovery_code": codes[0]}).want(t, 200, "").tokens()
		e.call("POST", "/v1/mfa/recovery-codes", nil, s.AT).want(t, 200, "") // this session gave a second factor
		e.nextStep()
		pw := e.freshPasswordSession(t, secret)
		e.call("DELETE", "/v1/mfa/totp", nil, pw).want(t, 403, "reauthentication_required")
		e.call("DELETE", "/v1/mfa/totp", map[string]string{"code": "000000"}, pw).want(t, 401, "invalid_credentials")
		e.call("DELETE", "/v1/mfa/totp", map[string]string{"code": e.totpCode(secret, 0)}, pw).want(t, 204, "")
		e.call("DELETE", "/v1/mfa/totp", nil, s.AT).want(t, 404, "not_found")

		// Off: the password alone logs in again.
		e.login("ada@example.com")
		events := e.eventTypes("ada@example.com")
		if !slices.Contains(events, "mfa.disabled") {
			t.Errorf("events %v: want mfa.disabled", events)
		}
	})
}

// freshPasswordSession is a session whose amr is pwd alone, for a user with
// TOTP on: made while TOTP is briefly off would change events, so it is the
// MFA login's session with its amr set back to pwd in the store.
func (e *testEnv) freshPasswordSession(t *testing.T, secret string) string {
	t.Helper()
	r := e.loginMFA(e.mfaToken("ada@example.com"), map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
	e.nextStep()
	e.setSessionAMR(r.str("session_id"), []string{"pwd"})
	return r.str("access_token")
}

func (r *response) tokens() tokens {
	return tokens{AT: r.str("access_token"), RT: r.str("refresh_token"), SID: r.str("session_id")}
}

// lastEvent is the user's newest event of type typ.
func (e *testEnv) lastEvent(email, typ string) sessiond.Event {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.app.Store.UserByEmail(ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	events, err := e.app.Store.Events(ctx, sessiond.EventQuery{UserID: u.ID, Type: typ, Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(events) == 0 {
		e.t.Fatalf("no %s event", typ)
	}
	return events[len(events)-1]
}

// setSessionAMR rewrites a session's amr in the store, keeping its auth time.
func (e *testEnv) setSessionAMR(sid string, amr []string) {
	e.t.Helper()
	err := e.app.Store.Tx(context.Background(), func(tx sessiond.Tx) error {
		s, err := tx.SessionByID(sid)
		if err != nil {
			return err
		}
		_, err = tx.SetSessionAuth(s.UserID, sid, amr, s.AuthTimeOrCreated())
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}
