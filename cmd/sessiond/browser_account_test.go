package main

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/mail/mailtest"
)

// The account page's account flows in Chromium: the links of real mail
// (received over SMTP by mailtest) opened in the browser, and the
// signed-in account's password, address and deletion.

// newBrowserMailEnv is a sessiond on SQLite whose mail goes through a real
// SMTP exchange with an in-process server, configured further by configure.
func newBrowserMailEnv(t *testing.T, configure func(*app.Config)) (*testEnv, *mailtest.Server) {
	t.Helper()
	srv := mailtest.Start(t, mailtest.Options{})
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "sessiond.db")
	cfg.PublicURL = reservePublicURL(t)
	cfg.Issuer = cfg.PublicURL
	cfg.MailFrom = "sessiond <no-reply@sessiond.test>"
	cfg.PasswordHash = fastHash
	cfg.HashWait = time.Minute
	cfg.SMTPURL = srv.URL("localhost")
	if configure != nil {
		configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := newTestEnvWith(t, cfg, nil, nil)
	e.deliver()
	return e, srv
}

// mailLink waits for the next mail to `to` with a link to path and returns
// that link on the test server, which serves the public URL.
func (e *testEnv) mailLink(srv *mailtest.Server, to, path string) (link, token string) {
	e.t.Helper()
	token = linkToken(e.t, srv, to, path)
	return e.srv.URL + path + "#token=" + url.QueryEscape(token), token
}

func (p *person) set(id, value string) {
	p.t.Helper()
	p.run(chromedp.SetValue(chromedp.CSS("#"+id), value))
}

func (p *person) click(id string) {
	p.t.Helper()
	p.run(chromedp.Click(chromedp.CSS("#" + id)))
}

// text is an element's text as shown.
func (p *person) text(id string) string {
	p.t.Helper()
	return eval[string](p, `document.getElementById('`+id+`').textContent`)
}

// says is the condition that the element is shown and its text contains s.
func (p *person) says(id, s string) string {
	return p.visible(id) + ` && document.getElementById('` + id + `').textContent.includes(` + jsString(s) + `)`
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// wantNoToken fails unless the address bar is path with no fragment.
func (p *person) wantNoToken(path string) {
	p.t.Helper()
	if got := eval[string](p, `location.pathname + location.hash`); got != path {
		p.t.Errorf("%s: got address %q, want %q (the used token out of the address bar)", p.name, got, path)
	}
}

func (p *person) open(link string) {
	p.t.Helper()
	p.run(chromedp.Navigate(link))
}

func (p *person) signUp(email, password string) {
	p.t.Helper()
	p.click("to-signup")
	p.waitFor("the sign-up form", p.visible("view-signup"))
	p.set("signup-email", email)
	p.set("signup-password", password)
	p.click("signup-submit")
}

func (e *testEnv) me(at string) *response {
	e.t.Helper()
	return e.call("GET", "/v1/me", nil, at).want(e.t, 200, "")
}

// TestBrowserSignUpAndVerify: sign up, which says to check the inbox; the
// link of the mail, opened in the browser, waits for the Confirm button;
// pressed, the address is confirmed (the page and /v1/me say so), the
// token leaves the address bar, and opening the used link again says it is
// used up.
func TestBrowserSignUpAndVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, mail := newBrowserMailEnv(t, nil)
	const email = "ada@example.com"

	p := newPerson(t, browser, "laptop", uaMac)
	p.open(e.srv.URL + "/account/")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signUp(email, testPassword)
	p.waitFor("check your inbox", p.visible("view-account")+" && "+p.says("account-notice", "Check your inbox"))
	if got := p.text("account-notice"); !strings.Contains(got, email) {
		t.Errorf("got notice %q, want it to name the address the link went to", got)
	}
	if got := p.text("email-state"); got != "Not confirmed" {
		t.Errorf("got address state %q, want Not confirmed", got)
	}
	p.waitFor("the offer to send the link again", p.visible("email-unconfirmed"))

	link, _ := e.mailLink(mail, email, "/account/verify")
	p.open(link)
	p.waitFor("the Confirm button", p.visible("view-verify")+" && "+p.visible("verify-ask"))
	p.click("verify-submit")
	p.waitFor("the confirmation", p.says("verify-done", "Your address is confirmed"))
	p.wantNoToken("/account/verify")
	at := e.login(email).AT
	if v, _ := e.me(at).Body["email_verified"].(bool); !v {
		t.Errorf("/v1/me after Confirm: email_verified is false, want true")
	}

	// The way back to the account, which says so too.
	p.click("verify-account")
	p.waitFor("the account, confirmed", p.visible("view-account")+` && document.getElementById('email-state').textContent === 'Confirmed'`)
	if eval[bool](p, p.visible("email-unconfirmed")) {
		t.Errorf("a confirmed address still offers to send the link again")
	}

	// The used link: said in words, and the token still leaves the address bar.
	p.open(link)
	p.waitFor("the Confirm button", p.visible("verify-ask"))
	p.click("verify-submit")
	p.waitFor("the link's end", p.says("verify-final", "already used"))
	p.wantNoToken("/account/verify")
	if eval[bool](p, p.visible("verify-ask")) {
		t.Errorf("a used-up link still offers its button")
	}

	// A link without its token says so, and offers nothing to press.
	p.open(e.srv.URL + "/account/verify")
	p.waitFor("the incomplete link", p.says("verify-final", "incomplete"))
	if eval[bool](p, p.visible("verify-ask")) {
		t.Errorf("a link without a token offers its button")
	}
}

// TestBrowserForgotAndReset: "Forgot password?" gives the same answer for
// any address; the reset link from the mail sets a new password (after
// the page refused two that don't match and a weak one, which leave the
// token usable), sends the person to sign in, and the new password signs
// in where the old one no longer does.
func TestBrowserForgotAndReset(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, mail := newBrowserMailEnv(t, nil)
	const email = "ada@example.com"
	e.signup(email)

	p := newPerson(t, browser, "laptop", uaMac)
	p.open(e.srv.URL + "/account/")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.click("to-forgot")
	p.waitFor("the forgot form", p.visible("view-forgot"))

	// The answer is the same for an address with an account and one without.
	forgot := func(addr string) string {
		p.set("forgot-email", addr)
		p.click("forgot-submit")
		p.waitFor("the answer", p.says("forgot-sent-text", addr))
		return strings.ReplaceAll(p.text("forgot-sent-text"), addr, "ADDR")
	}
	unknown := forgot("nobody@example.com")
	p.click("forgot-again")
	p.waitFor("the forgot form again", p.visible("forgot-form"))
	known := forgot(email)
	if known != unknown || !strings.HasPrefix(known, "If an account exists for ADDR, we sent") {
		t.Errorf("forgot: got %q for an account and %q for none, want the same neutral answer", known, unknown)
	}

	link, _ := e.mailLink(mail, email, "/account/reset")
	p.open(link)
	p.waitFor("the reset form", p.visible("view-reset")+" && "+p.visible("reset-form"))
	for _, tc := range []struct{ pw, again, want string }{
		{newPassword, "something else entirely", "don't match"},
		{"password1234", "password1234", "Choose a stronger password"},
	} {
		p.set("reset-password", tc.pw)
		p.set("reset-confirm", tc.again)
		p.click("reset-submit")
		p.waitFor("the error "+tc.want, p.says("reset-error", tc.want))
		if h := eval[string](p, `location.hash`); !strings.HasPrefix(h, "#token=") {
			t.Errorf("after %q the token left the address bar (%q); it is still good", tc.want, h)
		}
	}
	p.set("reset-password", newPassword)
	p.set("reset-confirm", newPassword)
	p.click("reset-submit")
	p.waitFor("sign in", p.visible("view-signin")+" && "+p.says("signin-notice", "Password changed"))
	p.wantNoToken("/account/")

	p.signIn(email, testPassword)
	p.waitFor("the old password refused", p.says("signin-error", "don't match"))
	p.signIn(email, newPassword)
	p.waitFor("the account", p.visible("view-account"))
	loginWith(e, email, newPassword).want(t, 200, "")
}

// TestBrowserLinksConsumeNothing: a mail scanner that opens the verify and
// the reset link in a browser and runs their scripts, but presses
// nothing, and one that fetches them with plain GETs (a prefetch among
// them), both get the page and leave both tokens good.
func TestBrowserLinksConsumeNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, mail := newBrowserMailEnv(t, nil)
	const email = "ada@example.com"
	e.signup(email)
	verifyLink, verifyTok := e.mailLink(mail, email, "/account/verify")
	e.call("POST", "/v1/password/forgot", map[string]string{"email": email}, "").want(t, 202, "")
	resetLink, resetTok := e.mailLink(mail, email, "/account/reset")

	scanner := newPerson(t, browser, "scanner", "Mozilla/5.0 (compatible; LinkScanner/2.1)")
	for _, l := range []struct{ link, view, button string }{
		{verifyLink, "view-verify", "verify-submit"},
		{resetLink, "view-reset", "reset-submit"},
	} {
		scanner.open(l.link)
		scanner.waitFor("the page's script to show "+l.view, scanner.visible(l.view)+" && "+scanner.visible(l.button))
	}
	// Leave the page, so nothing it might still do could happen later.
	scanner.open("about:blank")

	client := &http.Client{Timeout: 30 * time.Second}
	for _, link := range []string{verifyLink, resetLink} {
		for _, h := range []map[string]string{
			{"User-Agent": "LinkScanner/2.1"},
			{"Sec-Purpose": "prefetch", "Purpose": "prefetch"},
		} {
			req, err := http.NewRequest("GET", link, nil) // the fragment is never sent
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range h {
				req.Header.Set(k, v)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), `id="view-verify"`) {
				t.Errorf("GET %s with %v: got %d %q, want 200 and the account page", req.URL.Path, h, res.StatusCode, res.Header.Get("Content-Type"))
			}
		}
	}

	e.call("POST", "/v1/email/verify", map[string]string{"token": verifyTok}, "").want(t, 204, "")
	e.call("POST", "/v1/password/reset", map[string]string{"token": resetTok, "new_password": newPassword}, "").want(t, 204, "")
}

// TestBrowserChangePassword: the laptop changes the password (after a
// wrong current password was refused in words); the phone's next refresh
// fails and it shows the sign-in form, while the laptop stays signed in,
// and only the new password signs in.
func TestBrowserChangePassword(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, _ := newBrowserMailEnv(t, nil)
	const email = "ada@example.com"
	e.signup(email)
	page := e.srv.URL + "/account/"

	laptop := newPerson(t, browser, "laptop", uaMac)
	phone := newPerson(t, browser, "phone", uaIPhone)
	for _, p := range []*person{laptop, phone} {
		p.open(page)
		p.waitFor("the sign-in form", p.visible("view-signin"))
		p.signIn(email, testPassword)
		p.waitFor("the account", p.visible("view-account"))
	}
	laptop.run(chromedp.Reload())
	laptop.waitFor("two sessions", laptop.visible("view-account")+` && document.querySelectorAll('#sessions li').length === 2`)

	laptop.set("password-current", "not my password at all")
	laptop.set("password-new", newPassword)
	laptop.click("password-submit")
	laptop.waitFor("the wrong password refused", laptop.says("password-error", "isn't your password"))

	laptop.set("password-current", testPassword)
	laptop.set("password-new", newPassword)
	laptop.click("password-submit")
	laptop.waitFor("the change", laptop.says("password-notice", "Your password is changed"))
	laptop.waitFor("one session left", `document.querySelectorAll('#sessions li').length === 1`)
	if got := eval[string](laptop, `document.getElementById('password-current').value + document.getElementById('password-new').value`); got != "" {
		t.Errorf("the password form still holds %q after the change", got)
	}

	phone.run(chromedp.Reload())
	phone.waitFor("the sign-in form", phone.says("signin-notice", "You were signed out"))

	laptop.run(chromedp.Reload())
	laptop.waitFor("the account", laptop.visible("view-account"))
	loginWith(e, email, testPassword).want(t, 401, "invalid_credentials")
	loginWith(e, email, newPassword).want(t, 200, "")
}

// TestBrowserChangeEmail: a new address is asked for with the password;
// the page says to check the new inbox, the account keeps the old address
// until the new one's link is confirmed, and then shows the new one.
func TestBrowserChangeEmail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, mail := newBrowserMailEnv(t, nil)
	const email, newEmail = "ada@example.com", "ada@lovelace.example"
	e.signup(email)

	p := newPerson(t, browser, "laptop", uaMac)
	p.open(e.srv.URL + "/account/")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, testPassword)
	p.waitFor("the account", p.visible("view-account"))

	p.set("email-new", newEmail)
	p.set("email-password", "not my password at all")
	p.click("email-submit")
	p.waitFor("the wrong password refused", p.says("email-error", "isn't your password"))

	p.set("email-new", newEmail)
	p.set("email-password", testPassword)
	p.click("email-submit")
	p.waitFor("check your new inbox", p.says("email-notice", "Check your new inbox"))
	if got := p.text("email-notice"); !strings.Contains(got, newEmail) {
		t.Errorf("got notice %q, want it to name the new address", got)
	}
	if got := p.text("email-address"); got != email {
		t.Errorf("before confirming: got address %q, want still %q", got, email)
	}

	link, _ := e.mailLink(mail, newEmail, "/account/verify")
	p.open(link)
	p.waitFor("the Confirm button", p.visible("verify-ask"))
	p.click("verify-submit")
	p.waitFor("the confirmation", p.says("verify-done", "Your address is confirmed"))
	p.wantNoToken("/account/verify")
	p.click("verify-account")
	p.waitFor("the new address", p.visible("view-account")+` && document.getElementById('email-address').textContent === `+jsString(newEmail))
	loginWith(e, newEmail, testPassword).want(t, 200, "")
}

// TestBrowserDeleteAccount: deleting takes the password and a second,
// explicit press; a wrong password deletes nothing; then the page is
// signed out, a reload stays so, and signing in again fails.
func TestBrowserDeleteAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, _ := newBrowserMailEnv(t, nil)
	const email = "ada@example.com"
	e.signup(email)

	p := newPerson(t, browser, "laptop", uaMac)
	p.open(e.srv.URL + "/account/")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, testPassword)
	p.waitFor("the account", p.visible("view-account"))

	// The first press only asks.
	p.set("delete-password", testPassword)
	p.click("delete-start")
	p.waitFor("the confirmation step", p.visible("delete-confirm"))
	loginWith(e, email, testPassword).want(t, 200, "")
	p.click("delete-cancel")
	p.waitFor("the first step again", p.visible("delete-start")+` && document.getElementById('delete-confirm').hidden`)

	p.set("delete-password", "not my password at all")
	p.click("delete-start")
	p.waitFor("the confirmation step", p.visible("delete-confirm"))
	p.click("delete-final")
	p.waitFor("the wrong password refused", p.says("delete-error", "still here"))
	loginWith(e, email, testPassword).want(t, 200, "")

	p.set("delete-password", testPassword)
	p.click("delete-start")
	p.waitFor("the confirmation step", p.visible("delete-confirm"))
	if got := p.text("delete-final"); got != "Delete my account for good" {
		t.Errorf("got final button %q, want Delete my account for good", got)
	}
	p.click("delete-final")
	p.waitFor("signed out", p.visible("view-signin")+" && "+p.says("signin-notice", "deleted"))

	p.run(chromedp.Reload())
	p.waitFor("the sign-in form after a reload", p.visible("view-signin"))
	p.signIn(email, testPassword)
	p.waitFor("the sign-in refused", p.says("signin-error", "don't match"))
	loginWith(e, email, testPassword).want(t, 401, "invalid_credentials")
}

// TestBrowserSignUpVerificationRequired: with confirmed addresses required,
// sign-up says to check the inbox and signs nobody in; signing in before
// confirming is refused in words; the mail's link confirms the address,
// and then signing in works.
func TestBrowserSignUpVerificationRequired(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e, mail := newBrowserMailEnv(t, func(c *app.Config) { c.RequireVerifiedEmail = true })
	const email = "ada@example.com"

	p := newPerson(t, browser, "laptop", uaMac)
	p.open(e.srv.URL + "/account/")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signUp(email, testPassword)
	p.waitFor("check your inbox", p.visible("view-checkmail")+" && "+p.says("checkmail-email", email))
	if n := len(e.liveSessions(email)); n != 0 {
		t.Errorf("got %d sessions after sign-up, want none before the address is confirmed", n)
	}

	p.click("checkmail-signin")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, testPassword)
	p.waitFor("the refusal", p.says("signin-error", "Confirm your email address first"))

	link, _ := e.mailLink(mail, email, "/account/verify")
	p.open(link)
	p.waitFor("the Confirm button", p.visible("verify-ask"))
	p.click("verify-submit")
	p.waitFor("the confirmation", p.says("verify-done", "Your address is confirmed"))
	p.wantNoToken("/account/verify")

	p.click("verify-account")
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, testPassword)
	p.waitFor("the account, confirmed", p.visible("view-account")+` && document.getElementById('email-state').textContent === 'Confirmed'`)
}
