package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/mail/mailtest"
)

const newPassword = "another horse, another staple"

// newMailEnv is a sessiond whose outbox worker runs and sends mail through
// a real SMTP exchange with an in-process server; logs, when set, gets
// every log line.
func newMailEnv(t *testing.T, dbURL string, opt mailtest.Options, logs io.Writer) (*testEnv, *mailtest.Server) {
	t.Helper()
	srv := mailtest.Start(t, opt)
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.PublicURL = "https://sessiond.test"
	cfg.Issuer = "https://sessiond.test"
	cfg.PasswordHash = fastHash
	cfg.HashWait = time.Minute
	cfg.SMTPURL = srv.URL("localhost")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := newTestEnvLogged(t, cfg, nil, nil, logs)
	e.deliver()
	return e, srv
}

// linkToken waits for the next mail to to whose link goes to path
// ("/account/reset", "/account/verify") and returns the link's token;
// mail of another kind or to another address is passed over.
func linkToken(t *testing.T, srv *mailtest.Server, to, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := srv.Next(t, time.Until(deadline))
		p, err := mailtest.Parse(m.Data)
		if err != nil {
			t.Fatalf("parse mail: %v", err)
		}
		if len(m.To) == 1 && m.To[0] == to && strings.Contains(p.Text, path+"#token=") {
			tok := mailtest.Token(p.Text)
			if tok == "" {
				t.Fatalf("mail to %s has a %s link without a token:\n%s", to, path, p.Text)
			}
			return tok
		}
	}
}

// eventTypes are the types of the user's events, oldest first, each with
// its data.reason if it has one.
func (e *testEnv) eventTypes(email string) []string {
	e.t.Helper()
	u, err := e.app.Store.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.eventTypesOf(u.ID)
}

func (e *testEnv) countEvents(typ string) int {
	e.t.Helper()
	events, err := e.app.Store.Events(context.Background(), sessiond.EventQuery{Type: typ, Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(events)
}

func loginWith(e *testEnv, email, pw string) *response {
	e.t.Helper()
	return e.call("POST", "/v1/login", map[string]string{"email": email, "password": pw}, "")
}

// TestPasswordReset: forgot → the mail, received over SMTP → reset. The
// new password logs in, the old one does not, every old session is gone,
// the token works once, and no token shows in the logs.
func TestPasswordReset(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		logs := &syncBuffer{}
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, logs)
		e.signup("ada@example.com")
		verify := linkToken(t, srv, "ada@example.com", "/account/verify")
		s1, s2 := e.login("ada@example.com"), e.login("ada@example.com")

		r := e.call("POST", "/v1/password/forgot", map[string]string{"email": "Ada@Example.com"}, "").want(t, 202, "")
		if r.str("status") != "accepted" {
			t.Errorf("forgot: got %s, want status accepted", r.Raw)
		}
		tok := linkToken(t, srv, "ada@example.com", "/account/reset")

		e.call("POST", "/v1/password/reset", map[string]string{"token": tok, "new_password": "password1234"}, "").want(t, 422, "weak_password")
		e.call("POST", "/v1/password/reset", map[string]string{"token": tok, "new_password": newPassword}, "").want(t, 204, "")
		e.call("POST", "/v1/password/reset", map[string]string{"token": tok, "new_password": newPassword}, "").want(t, 400, "invalid_link")

		for _, s := range []tokens{s1, s2} {
			e.call("GET", "/v1/me", nil, s.AT).want(t, 401, "invalid_token")
			if r := e.refresh(s.RT); r.Status != 401 {
				t.Errorf("refresh of a session from before the reset: got %d, want 401", r.Status)
			}
		}
		loginWith(e, "ada@example.com", testPassword).want(t, 401, "invalid_credentials")
		loginWith(e, "ada@example.com", newPassword).want(t, 200, "")

		got := strings.Join(e.eventTypes("ada@example.com"), " ")
		want := "password.reset_requested session.ended:password_reset session.ended:password_reset password.reset login.failed:wrong_password session.created"
		if !strings.Contains(got, want) {
			t.Errorf("events: got %s, want them to contain %s", got, want)
		}
		for _, secret := range []string{tok, verify} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a mail token is in the logs")
			}
		}
	})
}

// TestResetTokenSingleUse: of concurrent resets with one token, exactly
// one succeeds.
func TestResetTokenSingleUse(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		tok := linkToken(t, srv, "ada@example.com", "/account/reset")

		const n = 8
		body, _ := json.Marshal(map[string]string{"token": tok, "new_password": newPassword})
		var ok, invalid, other atomic.Int32
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := e.srv.Client().Post(e.srv.URL+"/v1/password/reset", "application/json", bytes.NewReader(body))
				if err != nil {
					other.Add(1)
					return
				}
				defer resp.Body.Close()
				var p struct{ Code string }
				json.NewDecoder(resp.Body).Decode(&p)
				switch {
				case resp.StatusCode == http.StatusNoContent:
					ok.Add(1)
				case resp.StatusCode == http.StatusBadRequest && p.Code == "invalid_link":
					invalid.Add(1)
				default:
					other.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 || invalid.Load() != n-1 || other.Load() != 0 {
			t.Errorf("got %d × 204, %d × invalid_link, %d others; want 1, %d, 0", ok.Load(), invalid.Load(), other.Load(), n-1)
		}
		if got := e.countEvents(sessiond.EventPasswordReset); got != 1 {
			t.Errorf("password.reset events: got %d, want 1", got)
		}
	})
}

// TestResetTokenVoid: a token superseded by a newer one, and an expired
// one, are refused with invalid_link; so is one that is no token at all.
func TestResetTokenVoid(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		forgot := func() string {
			e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
			return linkToken(t, srv, "ada@example.com", "/account/reset")
		}
		reset := func(tok string) *response {
			return e.call("POST", "/v1/password/reset", map[string]string{"token": tok, "new_password": newPassword}, "")
		}
		older, newer := forgot(), forgot()
		reset(older).want(t, 400, "invalid_link")
		for _, junk := range []string{"x", strings.Repeat("A", 43), strings.Repeat("é", 30)} {
			reset(junk).want(t, 400, "invalid_link")
		}

		e.clock.Advance(e.cfg.ResetTTL + time.Second)
		reset(newer).want(t, 400, "invalid_link")

		fresh := forgot()
		reset(fresh).want(t, 204, "")
	})
}

// TestForgotAnswersAlike: a known address, an unknown one, and a known one
// over its mail limit get the same status and body; only the mail the
// limit allows is queued.
func TestForgotAnswersAlike(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, _ := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		known := e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		for _, email := range []string{"nobody@example.com", "ada@example.com", "ada@example.com", "ada@example.com", "nobody@example.com"} {
			r := e.call("POST", "/v1/password/forgot", map[string]string{"email": email}, "")
			if r.Status != known.Status || !bytes.Equal(r.Raw, known.Raw) || r.Header.Get("Content-Type") != known.Header.Get("Content-Type") {
				t.Errorf("forgot %s: got %d %q, want %d %q as for the first known address", email, r.Status, r.Raw, known.Status, known.Raw)
			}
		}
		// The burst limit (3) lets the first three requests for ada mail.
		if got := e.countEvents(sessiond.EventPasswordResetRequested); got != 3 {
			t.Errorf("password.reset_requested events: got %d, want 3", got)
		}
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "not an address"}, "").want(t, 422, "invalid_email")
		e.call("POST", "/v1/password/forgot", map[string]string{}, "").want(t, 400, "invalid_request")
	})
}

// TestVerifyEmail: signup mails a link that confirms the address; a resent
// link supersedes it; a confirmed address stays confirmed.
func TestVerifyEmail(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		first := linkToken(t, srv, "ada@example.com", "/account/verify")
		s := e.login("ada@example.com")
		if r := e.call("GET", "/v1/me", nil, s.AT).want(t, 200, ""); r.Body["email_verified"] != false {
			t.Errorf("me before verifying: got %s, want email_verified false", r.Raw)
		}
		e.call("POST", "/v1/email/verify/resend", nil, s.AT).want(t, 202, "")
		second := linkToken(t, srv, "ada@example.com", "/account/verify")
		e.call("POST", "/v1/email/verify", map[string]string{"token": first}, "").want(t, 400, "invalid_link")
		e.call("POST", "/v1/email/verify", map[string]string{"token": second}, "").want(t, 204, "")
		e.call("POST", "/v1/email/verify", map[string]string{"token": second}, "").want(t, 400, "invalid_link")
		if r := e.call("GET", "/v1/me", nil, s.AT).want(t, 200, ""); r.Body["email_verified"] != true {
			t.Errorf("me after verifying: got %s, want email_verified true", r.Raw)
		}
		e.call("POST", "/v1/email/verify/resend", nil, s.AT).want(t, 202, "")
		e.call("POST", "/v1/email/verify/resend", nil, "").want(t, 401, "invalid_token")
		got := strings.Join(e.eventTypes("ada@example.com"), " ")
		if want := "user.created email.verification_sent session.created email.verification_sent email.verified"; got != want {
			t.Errorf("events: got %s, want %s", got, want)
		}
	})
}

// TestMailRetriedAfterOutage: while the relay refuses mail for a while
// (4xx) or cannot be reached at all, the requests that cause mail still
// succeed; the mail stays in the outbox and is delivered once the relay
// takes it again.
func TestMailRetriedAfterOutage(t *testing.T) {
	for _, outage := range []string{"refusing", "unreachable"} {
		t.Run("relay="+outage, func(t *testing.T) {
			eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
				var down atomic.Bool
				down.Store(true)
				srv := mailtest.Start(t, mailtest.Options{Rcpt: func(string) error {
					if outage == "refusing" && down.Load() {
						return mailtest.Reply(451, "try again later")
					}
					return nil
				}})
				smtpURL, up := srv.URL("localhost"), func() {}
				if outage == "unreachable" {
					port := newFlakyPort(t, srv.Addr) // refuses connections until up
					smtpURL, up = "smtp://"+port.addr, port.up
				}
				e := newTestEnvWith(t, mailConfig(t, dbURL(t), smtpURL, nil), nil, nil)
				e.deliver()

				e.signup("ada@example.com")
				e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
				deadline := time.Now().Add(30 * time.Second)
				for {
					msgs, err := e.app.Store.PendingMail(context.Background(), 10)
					if err != nil {
						t.Fatal(err)
					}
					if len(msgs) == 2 && msgs[0].Attempts >= 1 && msgs[1].Attempts >= 1 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("no failed attempt recorded for both mails: %+v", msgs)
					}
					time.Sleep(20 * time.Millisecond)
				}
				down.Store(false)
				up()
				// Time passes until the retries are due: the fake clock
				// moves a millisecond a reading, so a mail may have been
				// tried more than once during the outage, and its next
				// retry may be minutes away.
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(200 * time.Millisecond):
							e.clock.Advance(30 * time.Second)
						}
					}
				})
				// The two mails may come in either order.
				var verify, reset string
				for verify == "" || reset == "" {
					m := srv.Next(t, 30*time.Second)
					p, err := mailtest.Parse(m.Data)
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case strings.Contains(p.Text, "/account/verify#token="):
						verify = mailtest.Token(p.Text)
					case strings.Contains(p.Text, "/account/reset#token="):
						reset = mailtest.Token(p.Text)
					}
				}
				close(stop)
				wg.Wait()
				e.call("POST", "/v1/email/verify", map[string]string{"token": verify}, "").want(t, 204, "")
				e.call("POST", "/v1/password/reset", map[string]string{"token": reset, "new_password": newPassword}, "").want(t, 204, "")
			})
		})
	}
}

// TestMailList: without SMTP, mail waits in the outbox, and `sessiond mail
// list` shows it, the link only with -links.
func TestMailList(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.deliver() // no mail sender: the mail must stay pending, untouched
		e.signup("ada@example.com")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		list := func(args ...string) string {
			var out bytes.Buffer
			env := getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": e.cfg.DatabaseURL, "SESSIOND_PUBLIC_URL": e.cfg.PublicURL})
			if err := run(context.Background(), append([]string{"mail", "list"}, args...), env, &out, io.Discard); err != nil {
				t.Fatalf("mail list: %v", err)
			}
			return out.String()
		}
		out := list()
		if !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "verify_email") || !strings.Contains(out, "reset_password") {
			t.Errorf("mail list: got\n%s\nwant both mails to ada@example.com", out)
		}
		if strings.Contains(out, "#token=") {
			t.Errorf("mail list without -links shows a link:\n%s", out)
		}
		if out := list("-links"); !strings.Contains(out, "https://sessiond.test/account/reset#token=") {
			t.Errorf("mail list -links: got\n%s\nwant the reset link", out)
		}
		msgs, err := e.app.Store.PendingMail(context.Background(), 10)
		if err != nil || len(msgs) != 2 {
			t.Fatalf("pending mail: got %d, %v; want 2", len(msgs), err)
		}
		for _, m := range msgs {
			if m.Attempts != 0 {
				t.Errorf("mail to %s: %d attempts without a mail sender, want 0", m.Target, m.Attempts)
			}
		}
	})
}

// TestResetKeepsSecondFactor: a mailed reset replaces the password only:
// with TOTP on, a login with the new password still asks for the code,
// and the code finishes it. A reset link is no way around the second
// factor.
func TestResetKeepsSecondFactor(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		e.signup("ada@example.com")
		linkToken(t, srv, "ada@example.com", "/account/verify")
		secret, _ := e.enrolTOTP(e.login("ada@example.com").AT)

		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		tok := linkToken(t, srv, "ada@example.com", "/account/reset")
		e.call("POST", "/v1/password/reset", map[string]string{"token": tok, "new_password": newPassword}, "").want(t, 204, "")

		r := loginWith(e, "ada@example.com", newPassword).want(t, 403, "mfa_required")
		e.loginMFA(r.str("mfa_token"), map[string]string{"code": e.totpCode(secret, 0)}).want(t, 200, "")
	})
}
