package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// newLocalhostEnv is a sessiond whose public URL is http://localhost:PORT,
// the port it listens on: WebAuthn needs a domain name as the RP ID (an IP
// address cannot be one), and browsers treat localhost as a secure
// context.
func newLocalhostEnv(t *testing.T) *testEnv {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "sessiond.db")
	cfg.PublicURL, cfg.Issuer = public, public
	cfg.PasswordHash = fastHash
	cfg.HashWait = time.Minute
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &fakeClock{now: time.Now().UTC()}
	a, err := app.New(ctx, cfg, db, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return sessiond.Now(clock.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return &testEnv{t: t, cfg: cfg, app: a, srv: srv, clock: clock}
}

// TestPasskeyInABrowser: on the account page in Chromium, with the DevTools
// virtual authenticator (CTAP2, internal, resident keys, user
// verification), a signed-in person adds a passkey, renames it, signs out,
// signs in with it without typing an email, and removes it.
func TestPasskeyInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e := newLocalhostEnv(t)
	page := e.cfg.PublicURL + "/account"
	const email, password = "ada@example.com", "correct horse battery staple"

	laptop := newPerson(t, browser, "laptop", uaMac)
	if _, err := chromedp.Call(laptop.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("webauthn enable: %v", err)
	}
	auth, err := chromedp.Call(laptop.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("add virtual authenticator: %v", err)
	}

	laptop.run(chromedp.Navigate(page))
	laptop.waitFor("the sign-in form", laptop.visible("view-signin"))
	laptop.waitFor("the passkey button", laptop.visible("passkey-signin-box"))
	laptop.run(chromedp.Click(chromedp.CSS("#to-signup")))
	laptop.waitFor("the sign-up form", laptop.visible("view-signup"))
	laptop.run(
		chromedp.SetValue(chromedp.CSS("#signup-email"), email),
		chromedp.SetValue(chromedp.CSS("#signup-password"), password),
		chromedp.Click(chromedp.CSS("#signup-submit")),
	)
	laptop.waitFor("the passkeys section", laptop.visible("view-account")+" && "+laptop.visible("passkeys-section")+" && "+laptop.visible("passkeys-empty"))

	// Add one.
	laptop.run(
		chromedp.SetValue(chromedp.CSS("#passkey-new-name"), "My laptop"),
		chromedp.Click(chromedp.CSS("#passkey-add")),
	)
	laptop.waitFor("one passkey", `document.querySelectorAll('#passkeys li').length === 1 || `+laptop.visible("passkey-error"))
	if msg := eval[string](laptop, `document.getElementById('passkey-error').hidden ? '' : document.getElementById('passkey-error').textContent`); msg != "" {
		t.Fatalf("adding a passkey: the page says %q", msg)
	}
	if got := eval[string](laptop, `document.querySelector('#passkeys .passkey-name').value`); got != "My laptop" {
		t.Errorf("passkey name: got %q, want My laptop", got)
	}
	creds, err := chromedp.Call(laptop.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth.AuthenticatorID})
	if err != nil {
		t.Fatal(err)
	}
	if len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential || creds.Credentials[0].RpID != "localhost" {
		t.Fatalf("authenticator credentials: got %+v, want one resident credential for localhost", creds.Credentials)
	}

	// Rename it.
	laptop.run(
		chromedp.SetValue(chromedp.CSS("#passkeys .passkey-name"), "Work laptop"),
		chromedp.Click(chromedp.CSS("#passkeys .passkey-rename")),
	)
	laptop.waitFor("the rename", `document.getElementById('status').textContent.includes('Work laptop')`)

	// Sign out, and back in with the passkey alone.
	laptop.run(chromedp.Click(chromedp.CSS("#signout-here")))
	laptop.waitFor("the sign-in form", laptop.visible("view-signin"))
	if n := len(e.liveSessions(email)); n != 0 {
		t.Fatalf("live sessions after sign-out: got %d, want 0", n)
	}
	laptop.run(chromedp.Click(chromedp.CSS("#passkey-signin")))
	laptop.waitFor("the account view", laptop.visible("view-account")+` && document.querySelectorAll('#passkeys li').length === 1 || `+laptop.visible("passkey-signin-error"))
	if msg := eval[string](laptop, `document.getElementById('passkey-signin-error').hidden ? '' : document.getElementById('passkey-signin-error').textContent`); msg != "" {
		t.Fatalf("signing in with the passkey: the page says %q", msg)
	}
	ss := e.liveSessions(email)
	if len(ss) != 1 || !slices.Equal(ss[0].AMR, []string{"hwk", "user"}) {
		t.Fatalf("sessions after the passkey sign-in: got %+v, want one with amr hwk, user", ss)
	}
	if got := eval[string](laptop, `document.getElementById('who-email').textContent`); got != email {
		t.Errorf("signed in as %q, want %s", got, email)
	}
	if got := eval[string](laptop, `document.querySelector('#passkeys .meta').textContent`); !strings.Contains(got, "Last used") {
		t.Errorf("passkey details %q: want it to say when it was last used", got)
	}

	// The refresh cookie works after a reload, as after a password sign-in.
	laptop.run(chromedp.Reload())
	laptop.waitFor("the account view after a reload", laptop.visible("view-account")+` && document.querySelectorAll('#passkeys li').length === 1`)

	// With a passkey, the password is one step of two: the second step
	// offers the passkey, and no code field (there is no TOTP).
	laptop.run(chromedp.Click(chromedp.CSS("#signout-here")))
	laptop.waitFor("the sign-in form", laptop.visible("view-signin"))
	laptop.signIn(email, password)
	laptop.waitFor("the passkey step", laptop.visible("view-mfa")+` && `+laptop.visible("mfa-login-passkey-field"))
	if eval[bool](laptop, `!document.getElementById('mfa-login-form').hidden`) {
		t.Errorf("the second step shows the code form to a user without TOTP")
	}
	laptop.run(chromedp.Click(chromedp.CSS("#mfa-login-passkey")))
	laptop.waitFor("the account view", laptop.visible("view-account")+` || `+laptop.visible("mfa-login-passkey-error"))
	if msg := eval[string](laptop, `document.getElementById('mfa-login-passkey-error').hidden ? '' : document.getElementById('mfa-login-passkey-error').textContent`); msg != "" {
		t.Fatalf("the passkey step: the page says %q", msg)
	}
	ss = e.liveSessions(email)
	if len(ss) != 1 || !slices.Equal(ss[0].AMR, []string{"pwd", "hwk", "user"}) {
		t.Fatalf("sessions after the password and the passkey: got %+v, want one with amr pwd, hwk, user", ss)
	}
	laptop.waitFor("the passkeys list", `document.querySelectorAll('#passkeys li').length === 1`)

	// Remove it.
	laptop.run(chromedp.Click(chromedp.CSS("#passkeys .passkey-remove")))
	laptop.waitFor("no passkeys", `document.querySelectorAll('#passkeys li').length === 0 && `+laptop.visible("passkeys-empty"))
}
