package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/mail/mailtest"
)

// receivedMail is one mail the test SMTP server accepted, taken apart.
type receivedMail struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// nextMails waits for the next n mails, in whatever order the outbox
// worker sent them, and returns them sorted by recipient.
func nextMails(t *testing.T, srv *mailtest.Server, n int) []receivedMail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var out []receivedMail
	for range n {
		m := srv.Next(t, time.Until(deadline))
		p, err := mailtest.Parse(m.Data)
		if err != nil {
			t.Fatalf("parse mail: %v", err)
		}
		if len(m.To) != 1 {
			t.Fatalf("mail to %v, want one recipient", m.To)
		}
		out = append(out, receivedMail{To: m.To[0], Subject: p.Header.Get("Subject"), Text: p.Text, HTML: p.HTML})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].To < out[j].To })
	return out
}

// eventTypesOf is eventTypes for a user id, which outlives the user.
func (e *testEnv) eventTypesOf(userID string) []string {
	e.t.Helper()
	events, err := e.app.Store.Events(context.Background(), sessiond.EventQuery{UserID: userID, Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		k := ev.Type
		if r, ok := ev.Data["reason"].(string); ok {
			k += ":" + r
		}
		out = append(out, k)
	}
	return out
}

func (e *testEnv) userID(email string) string {
	e.t.Helper()
	u, err := e.app.Store.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("user %s: %v", email, err)
	}
	return u.ID
}

// pendingMailTo is the pending mail rows, by target.
func (e *testEnv) pendingMailTo() map[string]int {
	e.t.Helper()
	msgs, err := e.app.Store.PendingMail(context.Background(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range msgs {
		out[m.Target]++
	}
	return out
}

// atClaims decodes an access token's claims; the signature is the
// verifier's business, tested elsewhere.
func atClaims(t *testing.T, at string) map[string]any {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func wantEvents(t *testing.T, got []string, want string) {
	t.Helper()
	if g := strings.Join(got, " "); !strings.Contains(g, want) {
		t.Errorf("events: got %s, want them to contain %s", g, want)
	}
}

// TestChangePassword: the current session keeps working, every other one
// ends, the old password is refused and the new one logs in, unused reset
// links are void, and the owner gets a notice linking to the forgot page.
func TestChangePassword(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		linkToken(t, srv, "ada@example.com", "/account/verify")
		cur, other := e.login("ada@example.com"), e.login("ada@example.com")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		reset := linkToken(t, srv, "ada@example.com", "/account/reset")

		change := func(current, next string) *response {
			return e.call("POST", "/v1/password", map[string]string{"current_password": current, "new_password": next}, cur.AT)
		}
		change(testPassword, "password1234").want(t, 422, "weak_password")
		change("not my password at all", newPassword).want(t, 401, "invalid_credentials")
		e.call("POST", "/v1/password", map[string]string{"current_password": testPassword}, cur.AT).want(t, 400, "invalid_request")
		e.call("POST", "/v1/password", map[string]string{"current_password": testPassword, "new_password": newPassword}, "").want(t, 401, "invalid_token")
		change(testPassword, newPassword).want(t, 204, "")

		e.call("GET", "/v1/me", nil, cur.AT).want(t, 200, "")
		e.refresh(cur.RT).want(t, 200, "")
		e.call("GET", "/v1/me", nil, other.AT).want(t, 401, "invalid_token")
		e.refresh(other.RT).want(t, 401, "")
		loginWith(e, "ada@example.com", testPassword).want(t, 401, "invalid_credentials")
		loginWith(e, "ada@example.com", newPassword).want(t, 200, "")
		e.call("POST", "/v1/password/reset", map[string]string{"token": reset, "new_password": "yet another horse staple"}, "").want(t, 400, "invalid_link")

		m := nextMails(t, srv, 1)[0]
		if m.To != "ada@example.com" || !strings.Contains(m.Subject, "password was changed") ||
			!strings.Contains(m.Text, "https://sessiond.test/account/forgot\n") || strings.Contains(m.Text, "#token=") {
			t.Errorf("notice: got mail to %s, %q:\n%s\nwant the password-changed notice with the forgot link and no token", m.To, m.Subject, m.Text)
		}
		wantEvents(t, e.eventTypes("ada@example.com"), "session.ended:password_changed password.changed login.failed:wrong_password session.created")
		if got := e.countEvents(sessiond.EventSessionEnded); got != 1 {
			t.Errorf("session.ended events: got %d, want 1 (the other session)", got)
		}
	})
}

// TestAccountPasswordThrottled: wrong passwords on every endpoint that
// takes one are 401 and count on the login limits, so they end in 429
// before the limit's worth of guesses is exceeded, and a login from the
// same client is held by the same counters.
func TestAccountPasswordThrottled(t *testing.T) {
	cases := []struct {
		method, path string
		body         func(pw string) map[string]string
	}{
		{"POST", "/v1/password", func(pw string) map[string]string {
			return map[string]string{"current_password": pw, "new_password": newPassword}
		}},
		{"POST", "/v1/email", func(pw string) map[string]string {
			return map[string]string{"password": pw, "new_email": "new@example.com"}
		}},
		{"DELETE", "/v1/me", func(pw string) map[string]string { return map[string]string{"password": pw} }},
		{"POST", "/v1/reauthenticate", func(pw string) map[string]string { return map[string]string{"password": pw} }},
	}
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		for _, tc := range cases {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.LoginMaxFailures = 3 })
				e.signup("ada@example.com")
				s := e.login("ada@example.com")
				for i := range 3 {
					if r := e.call(tc.method, tc.path, tc.body("wrong password number one"), s.AT); r.Status != 401 || r.str("code") != "invalid_credentials" {
						t.Fatalf("wrong password %d: got %d %s, want 401 invalid_credentials", i+1, r.Status, r.Raw)
					}
				}
				r := e.call(tc.method, tc.path, tc.body(testPassword), s.AT).want(t, 429, "too_many_attempts")
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
				loginWith(e, "ada@example.com", testPassword).want(t, 429, "too_many_attempts")
				e.call("GET", "/v1/me", nil, s.AT).want(t, 200, "")
			})
		}
	})
}

// TestChangeEmail: a verification mail to the new address and a notice,
// with the new address masked, to the old one; confirming makes the new
// address the account's, confirmed; the old one no longer logs in, the
// new one does, and no session ends.
func TestChangeEmail(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		oldVerify := linkToken(t, srv, "ada@example.com", "/account/verify")
		s := e.login("ada@example.com")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		oldReset := linkToken(t, srv, "ada@example.com", "/account/reset")

		change := func(pw, email string) *response {
			return e.call("POST", "/v1/email", map[string]string{"password": pw, "new_email": email}, s.AT)
		}
		change(testPassword, "not an address").want(t, 422, "invalid_email")
		change(testPassword, "ada@example.com").want(t, 422, "invalid_email")
		change("wrong password entirely", "lovelace@example.org").want(t, 401, "invalid_credentials")
		if r := change(testPassword, "  Lovelace@Example.ORG ").want(t, 202, ""); r.str("status") != "accepted" {
			t.Errorf("change email: got %s, want status accepted", r.Raw)
		}
		mails := nextMails(t, srv, 2) // sorted: ada@… before lovelace@…
		notice, verify := mails[0], mails[1]
		if notice.To != "ada@example.com" || !strings.Contains(notice.Text, "l…@example.org") || strings.Contains(notice.Text, "lovelace") ||
			!strings.Contains(notice.Text, "https://sessiond.test/account/forgot") || strings.Contains(notice.Text, "#token=") {
			t.Errorf("notice to the old address: got mail to %s:\n%s\nwant the masked new address and the forgot link", notice.To, notice.Text)
		}
		tok := mailtest.Token(verify.Text)
		if verify.To != "lovelace@example.org" || tok == "" || !strings.Contains(verify.Text, "https://sessiond.test/account/verify#token=") {
			t.Fatalf("verification: got mail to %s:\n%s\nwant a verify link to lovelace@example.org", verify.To, verify.Text)
		}
		if r := e.call("GET", "/v1/me", nil, s.AT).want(t, 200, ""); r.str("email") != "ada@example.com" {
			t.Errorf("me before confirming: got %s, want the old address still", r.Raw)
		}

		e.call("POST", "/v1/email/verify", map[string]string{"token": tok}, "").want(t, 204, "")
		r := e.call("GET", "/v1/me", nil, s.AT).want(t, 200, "")
		if r.str("email") != "lovelace@example.org" || r.Body["email_verified"] != true {
			t.Errorf("me after confirming: got %s, want lovelace@example.org, verified", r.Raw)
		}
		e.refresh(s.RT).want(t, 200, "")
		loginWith(e, "ada@example.com", testPassword).want(t, 401, "invalid_credentials")
		loginWith(e, "lovelace@example.org", testPassword).want(t, 200, "")
		e.call("POST", "/v1/email/verify", map[string]string{"token": tok}, "").want(t, 400, "invalid_link")
		e.call("POST", "/v1/email/verify", map[string]string{"token": oldVerify}, "").want(t, 400, "invalid_link")
		e.call("POST", "/v1/password/reset", map[string]string{"token": oldReset, "new_password": newPassword}, "").want(t, 400, "invalid_link")
		e.signup("ada@example.com") // the old address is free

		wantEvents(t, e.eventTypes("lovelace@example.org"),
			"email.verification_sent email.verified user.updated session.created")
		events, err := e.app.Store.Events(context.Background(), sessiond.EventQuery{Type: sessiond.EventUserUpdated, Limit: 10})
		if err != nil || len(events) != 1 || events[0].Data["email"] != true || events[0].Data["email_verified"] != true {
			t.Errorf("user.updated: got %+v, %v; want one with data email and email_verified true", events, err)
		}
		if got := e.countEvents(sessiond.EventSessionEnded); got != 0 {
			t.Errorf("session.ended events: got %d, want 0", got)
		}
	})
}

// TestChangeEmailToTakenAddress: asking for an address another account
// has answers the same and mails only the notice; confirming after the
// address was taken since is 409 with the token unspent, so it works once
// the address is free again.
func TestChangeEmailToTakenAddress(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		t.Run("taken when asked", func(t *testing.T) {
			e := newTestEnv(t, dbURL(t), nil) // no SMTP: the mail stays in the outbox to look at
			e.signup("ada@example.com")
			e.signup("bob@example.com")
			s := e.login("ada@example.com")
			free := e.call("POST", "/v1/email", map[string]string{"password": testPassword, "new_email": "carol@example.com"}, s.AT).want(t, 202, "")
			taken := e.call("POST", "/v1/email", map[string]string{"password": testPassword, "new_email": "bob@example.com"}, s.AT).want(t, 202, "")
			if !bytes.Equal(free.Raw, taken.Raw) {
				t.Errorf("answers: got %s for a taken address, %s for a free one; want the same", taken.Raw, free.Raw)
			}
			got := e.pendingMailTo()
			want := map[string]int{"ada@example.com": 3, "bob@example.com": 1, "carol@example.com": 1} // verify ×1 + 2 notices; bob's signup verify; carol's
			if len(got) != len(want) || got["ada@example.com"] != 3 || got["bob@example.com"] != 1 || got["carol@example.com"] != 1 {
				t.Errorf("pending mail: got %v, want %v (nothing more to bob)", got, want)
			}
		})
		t.Run("taken before confirming", func(t *testing.T) {
			e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
			e.signup("ada@example.com")
			linkToken(t, srv, "ada@example.com", "/account/verify")
			s := e.login("ada@example.com")
			e.call("POST", "/v1/email", map[string]string{"password": testPassword, "new_email": "bob@example.com"}, s.AT).want(t, 202, "")
			tok := linkToken(t, srv, "bob@example.com", "/account/verify")
			e.signup("bob@example.com")
			e.call("POST", "/v1/email/verify", map[string]string{"token": tok}, "").want(t, 409, "email_taken")
			if r := e.call("GET", "/v1/me", nil, s.AT).want(t, 200, ""); r.str("email") != "ada@example.com" {
				t.Errorf("me: got %s, want the old address", r.Raw)
			}
			bob := e.login("bob@example.com")
			e.call("DELETE", "/v1/me", map[string]string{"password": testPassword}, bob.AT).want(t, 204, "")
			e.call("POST", "/v1/email/verify", map[string]string{"token": tok}, "").want(t, 204, "")
			if r := e.call("GET", "/v1/me", nil, s.AT).want(t, 200, ""); r.str("email") != "bob@example.com" {
				t.Errorf("me: got %s, want bob@example.com", r.Raw)
			}
		})
	})
}

// TestChangeEmailTokenSingleUse: of concurrent confirmations with one
// email-change token, exactly one succeeds.
func TestChangeEmailTokenSingleUse(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		linkToken(t, srv, "ada@example.com", "/account/verify")
		s := e.login("ada@example.com")
		e.call("POST", "/v1/email", map[string]string{"password": testPassword, "new_email": "lovelace@example.org"}, s.AT).want(t, 202, "")
		tok := linkToken(t, srv, "lovelace@example.org", "/account/verify")

		const n = 8
		body, _ := json.Marshal(map[string]string{"token": tok})
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := e.srv.Client().Post(e.srv.URL+"/v1/email/verify", "application/json", bytes.NewReader(body))
				if err != nil {
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		slices.Sort(statuses)
		want := append([]int{http.StatusNoContent}, slices.Repeat([]int{http.StatusBadRequest}, n-1)...)
		if !slices.Equal(statuses, want) {
			t.Errorf("statuses: got %v, want one 204 and %d × 400", statuses, n-1)
		}
		if got := e.countEvents(sessiond.EventUserUpdated); got != 1 {
			t.Errorf("user.updated events: got %d, want 1", got)
		}
	})
}

// TestDeleteAccount: the user, their sessions and their pending mail are
// gone, the events say so, and the address signs up again.
func TestDeleteAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil) // no SMTP: mail stays pending until deleted
		e.signup("ada@example.com")
		e.signup("bob@example.com")
		id := e.userID("ada@example.com")
		s1, s2 := e.login("ada@example.com"), e.login("ada@example.com")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		e.call("POST", "/v1/email", map[string]string{"password": testPassword, "new_email": "lovelace@example.org"}, s1.AT).want(t, 202, "")
		if got := e.pendingMailTo(); got["ada@example.com"] != 3 || got["lovelace@example.org"] != 1 {
			t.Fatalf("pending mail before: got %v, want 3 to ada, 1 to lovelace", got)
		}

		e.call("DELETE", "/v1/me", map[string]string{"password": "wrong password entirely"}, s1.AT).want(t, 401, "invalid_credentials")
		e.call("DELETE", "/v1/me", map[string]string{}, s1.AT).want(t, 400, "invalid_request")
		e.call("DELETE", "/v1/me", map[string]string{"password": testPassword}, s1.AT).want(t, 204, "")

		if _, err := e.app.Store.UserByID(context.Background(), id); sessiond.ErrorCode(err) != sessiond.CodeNotFound {
			t.Errorf("user after delete: got %v, want not_found", err)
		}
		for _, s := range []tokens{s1, s2} {
			e.call("GET", "/v1/me", nil, s.AT).want(t, 401, "invalid_token")
			e.refresh(s.RT).want(t, 401, "")
		}
		if got := e.pendingMailTo(); len(got) != 1 || got["bob@example.com"] != 1 {
			t.Errorf("pending mail after: got %v, want only bob's", got)
		}
		loginWith(e, "ada@example.com", testPassword).want(t, 401, "invalid_credentials")
		wantEvents(t, e.eventTypesOf(id), "email.verification_sent session.ended:user_deleted session.ended:user_deleted user.deleted")
		e.signup("ada@example.com")
		if e.userID("ada@example.com") == id {
			t.Errorf("signup again: got the deleted user's id")
		}
		loginWith(e, "ada@example.com", testPassword).want(t, 200, "")
	})
}

// TestReauthenticate: the session's auth_time moves to now, the next
// refreshed access token says so, and a request without a proof is
// refused.
func TestReauthenticate(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		before := atClaims(t, s.AT)["auth_time"].(float64)
		e.clock.Advance(5 * time.Minute)

		e.call("POST", "/v1/reauthenticate", map[string]string{}, s.AT).want(t, 400, "invalid_request")
		e.call("POST", "/v1/reauthenticate", map[string]string{"password": testPassword, "code": "123456"}, s.AT).want(t, 400, "invalid_request")
		e.call("POST", "/v1/reauthenticate", map[string]string{"password": "wrong password entirely"}, s.AT).want(t, 401, "invalid_credentials")
		e.call("POST", "/v1/reauthenticate", map[string]string{"password": testPassword}, "").want(t, 401, "invalid_token")
		r := e.refresh(s.RT).want(t, 200, "")
		if got := atClaims(t, r.str("access_token"))["auth_time"].(float64); got != before {
			t.Errorf("auth_time before reauthenticating: got %v, want the login's %v", got, before)
		}
		e.call("POST", "/v1/reauthenticate", map[string]string{"password": testPassword}, s.AT).want(t, 204, "")
		r = e.refresh(r.str("refresh_token")).want(t, 200, "")
		after := atClaims(t, r.str("access_token"))["auth_time"].(float64)
		if after < before+5*60 {
			t.Errorf("auth_time after reauthenticating: got %v, want at least %v (5 minutes after the login)", after, before+5*60)
		}
		ss := e.liveSessions("ada@example.com")
		if len(ss) != 1 || ss[0].AuthTime.Unix() != int64(after) {
			t.Errorf("session: got %+v, want auth_time %v", ss, after)
		}
	})
}

// TestRequireVerifiedEmail: login to an unconfirmed address is 403 once
// the password checked out, and works after confirming; signup answers a
// new and a taken address alike, and the owner of a taken one gets mail.
func TestRequireVerifiedEmail(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		srv := mailtest.Start(t, mailtest.Options{})
		e := newTestEnv(t, dbURL(t), func(c *app.Config) {
			c.SMTPURL = srv.URL("localhost")
			c.RequireVerifiedEmail = true
		})
		e.deliver()
		signup := func(email, pw string) *response {
			return e.call("POST", "/v1/signup", map[string]string{"email": email, "password": pw}, "")
		}
		first := signup("ada@example.com", testPassword).want(t, 202, "")
		if first.str("status") != "verification_sent" {
			t.Errorf("signup: got %s, want status verification_sent", first.Raw)
		}
		tok := linkToken(t, srv, "ada@example.com", "/account/verify")
		loginWith(e, "ada@example.com", "wrong password entirely").want(t, 401, "invalid_credentials")
		loginWith(e, "ada@example.com", testPassword).want(t, 403, "email_not_verified")

		// Still unconfirmed: signing up again sends a new verification link.
		again := signup("ada@example.com", "a different horse and staple").want(t, 202, "")
		if !bytes.Equal(again.Raw, first.Raw) {
			t.Errorf("signup of a taken address: got %s, want %s as for a new one", again.Raw, first.Raw)
		}
		tok2 := linkToken(t, srv, "ada@example.com", "/account/verify")
		e.call("POST", "/v1/email/verify", map[string]string{"token": tok}, "").want(t, 400, "invalid_link")
		e.call("POST", "/v1/email/verify", map[string]string{"token": tok2}, "").want(t, 204, "")
		loginWith(e, "ada@example.com", testPassword).want(t, 200, "")

		// Confirmed: the owner is told they have an account.
		signup("ada@example.com", "a different horse and staple").want(t, 202, "")
		m := nextMails(t, srv, 1)[0]
		if m.To != "ada@example.com" || !strings.Contains(m.Subject, "already have an account") ||
			!strings.Contains(m.Text, "https://sessiond.test/account/forgot") || strings.Contains(m.Text, "#token=") {
			t.Errorf("account-exists mail: got mail to %s, %q:\n%s", m.To, m.Subject, m.Text)
		}
		loginWith(e, "ada@example.com", "a different horse and staple").want(t, 401, "invalid_credentials")
		signup("bad", testPassword).want(t, 422, "invalid_email")
		wantEvents(t, e.eventTypes("ada@example.com"),
			"user.created email.verification_sent login.failed:wrong_password login.failed:email_not_verified email.verification_sent email.verified session.created")
		if got := e.countEvents(sessiond.EventUserCreated); got != 1 {
			t.Errorf("user.created events: got %d, want 1", got)
		}
	})
}

// TestRequireVerifiedEmailOff: without the setting, signup is 201 and a
// taken address 409, and an unconfirmed address logs in.
func TestRequireVerifiedEmailOff(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		e.call("POST", "/v1/signup", map[string]string{"email": "ada@example.com", "password": testPassword}, "").want(t, 409, "email_taken")
		e.login("ada@example.com")
	})
}

// TestVerifiedSignupTiming: with verified addresses required, signups of
// new and of taken addresses take about the same time (medians within
// 20% of each other), so that timing does not tell them apart. It
// measures interleaved signups, and is allowed three rounds: one busy
// moment on a shared machine is noise, a real difference fails them all.
func TestVerifiedSignupTiming(t *testing.T) {
	const n = 15
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) {
			c.RequireVerifiedEmail = true
			c.SignupRate = 10000
		})
		signup := func(email string) time.Duration {
			body, _ := json.Marshal(map[string]string{"email": email, "password": testPassword})
			start := time.Now()
			resp, err := e.srv.Client().Post(e.srv.URL+"/v1/signup", "application/json", bytes.NewReader(body))
			d := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("signup %s: got %d, want 202", email, resp.StatusCode)
			}
			return d
		}
		median := func(ds []time.Duration) time.Duration {
			slices.Sort(ds)
			return ds[len(ds)/2]
		}
		var ratios []float64
		for round := range 3 {
			// Each taken address is used once, so its mail limit never
			// suppresses the mail and the work stays the whole work.
			for i := range n {
				signup(addr("taken", round, i))
			}
			var fresh, taken []time.Duration
			for i := range n {
				fresh = append(fresh, signup(addr("new", round, i)))
				taken = append(taken, signup(addr("taken", round, i)))
			}
			r := float64(median(taken)) / float64(median(fresh))
			t.Logf("round %d: median %v for a taken address, %v for a new one (ratio %.2f)", round+1, median(taken), median(fresh), r)
			if r >= 0.8 && r <= 1.2 {
				return
			}
			ratios = append(ratios, r)
		}
		t.Errorf("median time of a taken address's signup over a new one's: got %v in three rounds, want one within 0.8–1.2", ratios)
	})
}

func addr(kind string, round, i int) string {
	return kind + string(rune('a'+round)) + strings.Repeat("x", i+1) + "@example.com"
}
