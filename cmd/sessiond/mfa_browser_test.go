package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond/internal/app"
)

// TestMFAInABrowser drives two-step verification on the account page in
// headless Chromium: set up TOTP from the key the page shows (the test
// computes codes from it as an authenticator app would), see the recovery
// codes once with their download, sign out, sign in with a code, and again
// with a recovery code.
func TestMFAInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e := newTestEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "sessiond.db"), func(c *app.Config) {
		c.PublicURL, c.Issuer = atPublicURL(t)
	})
	const email, password = "ada@example.com", "correct horse battery staple"
	e.signup(email)

	p := newPerson(t, browser, "laptop", uaMac)
	p.run(chromedp.Navigate(e.srv.URL + "/account/"))
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, password)
	p.waitFor("the account with two-step verification off", p.visible("view-account")+" && "+p.visible("mfa-setup"))

	// Set up: the QR code (a data: URL the CSP allows) and the key.
	p.run(chromedp.Click(chromedp.CSS("#mfa-setup")))
	p.waitFor("the QR code", p.visible("mfa-enrol")+` && document.getElementById('mfa-qr').naturalWidth > 0`)
	secret := eval[string](p, `document.getElementById('mfa-secret').textContent`)
	if secret == "" {
		t.Fatal("the page shows no key")
	}
	p.run(
		chromedp.SetValue(chromedp.CSS("#mfa-confirm-code"), e.totpCode(secret, 0)),
		chromedp.Click(chromedp.CSS("#mfa-confirm-submit")),
	)
	p.waitFor("the recovery codes", p.visible("mfa-codes-box")+` && document.querySelectorAll('#mfa-codes li').length === 10`)
	codes := eval[[]string](p, `[...document.querySelectorAll('#mfa-codes code')].map(c => c.textContent)`)
	if href := eval[string](p, `document.getElementById('mfa-download').href`); !strings.HasPrefix(href, "blob:") {
		t.Errorf("download link: got %q, want a blob: URL", href)
	}
	p.run(chromedp.Click(chromedp.CSS("#mfa-codes-done")))
	p.waitFor("two-step verification on", p.visible("mfa-disable")+` && document.getElementById('mfa-state').textContent.includes('10 recovery codes left')`)
	if n := eval[int](p, `document.querySelectorAll('#mfa-codes li').length`); n != 0 {
		t.Errorf("after 'I saved them': %d codes still in the page, want none", n)
	}
	e.nextStep()

	// Sign out, and in with a code (a wrong one first).
	p.run(chromedp.Click(chromedp.CSS("#signout-here")))
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, password)
	p.waitFor("the second step", p.visible("view-mfa"))
	p.run(
		chromedp.SetValue(chromedp.CSS("#mfa-login-code"), "000000"),
		chromedp.Click(chromedp.CSS("#mfa-login-submit")),
	)
	p.waitFor("the wrong-code message", p.visible("mfa-login-error"))
	p.run(
		chromedp.SetValue(chromedp.CSS("#mfa-login-code"), e.totpCode(secret, 0)),
		chromedp.Click(chromedp.CSS("#mfa-login-submit")),
	)
	p.waitFor("the account", p.visible("view-account"))

	// And with a recovery code.
	p.run(chromedp.Click(chromedp.CSS("#signout-here")))
	p.waitFor("the sign-in form", p.visible("view-signin"))
	p.signIn(email, password)
	p.waitFor("the second step", p.visible("view-mfa"))
	p.run(chromedp.Click(chromedp.CSS("#mfa-login-toggle")))
	p.waitFor("the recovery code field", p.visible("mfa-login-recovery-field"))
	p.run(
		chromedp.SetValue(chromedp.CSS("#mfa-login-recovery"), codes[3]),
		chromedp.Click(chromedp.CSS("#mfa-login-submit")),
	)
	p.waitFor("the account with one code fewer", p.visible("view-account")+` && document.getElementById('mfa-state').textContent.includes('9 recovery codes left')`)
	if got := e.lastEvent(email, "session.created").Data["factor"]; got != "recovery_code" {
		t.Errorf("last session.created factor: got %v, want recovery_code", got)
	}
}
