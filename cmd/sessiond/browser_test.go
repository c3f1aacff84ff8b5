package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond/internal/app"
)

// updateScreenshots writes the account page's screenshots into docs/img,
// where the README shows them; without it they go to a temporary directory.
var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser test's screenshots into docs/img")

// User agents of two devices, so the page's device names are checked too.
const (
	uaMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// chromium finds Debian's Chromium (or another Chrome), or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (apt-get install -y chromium); .ci/run installs it, so this test runs in CI")
	return ""
}

// atPublicURL is a reserved public URL (reservePublicURL), as the public
// URL and the issuer of a browser test's env.
func atPublicURL(t *testing.T) (publicURL, issuer string) {
	u := reservePublicURL(t)
	return u, u
}

// newBrowser starts headless Chromium with the flags this machine's closed
// network needs, and returns a context holding the running browser.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return browserCtx
}

// person is one browser profile: its own cookies, its own tab.
type person struct {
	t    *testing.T
	name string
	ctx  context.Context
}

func newPerson(t *testing.T, browser context.Context, name, ua string) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &person{t: t, name: name, ctx: ctx}
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		t.Fatalf("%s: user agent: %v", name, err)
	}
	p.run(chromedp.EmulateViewport(1280, 800))
	return p
}

func (p *person) run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	err := chromedp.Do(p.ctx, actions...)
	if err != nil && strings.Contains(err.Error(), "Could not find node") {
		// The page swapped the document between finding a node and acting
		// on it (a navigation that had just finished): find it again.
		time.Sleep(200 * time.Millisecond)
		err = chromedp.Do(p.ctx, actions...)
	}
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

// eval returns a JavaScript expression's value.
func eval[T any](p *person, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds.
func (p *person) waitFor(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: two cores, several test binaries
	for {
		if ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("!!("+cond+")")); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
			p.t.Fatalf("%s: timed out waiting for %s; the page says:\n%s", p.name, what, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *person) visible(id string) string { return "!document.getElementById('" + id + "').hidden" }

func (p *person) sessionCount() int {
	return eval[int](p, `document.querySelectorAll('#sessions li').length`)
}

func (p *person) deviceNames() []string {
	return eval[[]string](p, `[...document.querySelectorAll('#sessions .device')].map(e => e.firstChild.textContent)`)
}

func (p *person) signIn(email, password string) {
	p.t.Helper()
	p.run(
		chromedp.SetValue(chromedp.CSS("#signin-email"), email),
		chromedp.SetValue(chromedp.CSS("#signin-password"), password),
		chromedp.Click(chromedp.CSS("#signin-submit")),
	)
}

// TestAccountPageInABrowser drives the account page in headless Chromium:
// sign up, sign in on a second device, see both sessions, sign the second
// out from the first, and see the second sent back to the sign-in form.
func TestAccountPageInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	// The default, Secure __Host- cookie: Chromium treats http://127.0.0.1
	// as a secure context, so production's settings are the ones tested.
	e := newTestEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "sessiond.db"), func(c *app.Config) {
		c.PublicURL, c.Issuer = atPublicURL(t)
		c.LoginMaxFailures = 3 // to see the throttling message soon
	})
	page := e.srv.URL + "/account"
	const email, password = "ada@example.com", "correct horse battery staple"

	laptop := newPerson(t, browser, "laptop", uaMac)
	laptop.run(chromedp.Navigate(page))
	laptop.waitFor("the sign-in form", laptop.visible("view-signin"))

	// Sign up, which signs in.
	laptop.run(chromedp.Click(chromedp.CSS("#to-signup")))
	laptop.waitFor("the sign-up form", laptop.visible("view-signup"))
	laptop.run(
		chromedp.SetValue(chromedp.CSS("#signup-email"), email),
		chromedp.SetValue(chromedp.CSS("#signup-password"), password),
		chromedp.Click(chromedp.CSS("#signup-submit")),
	)
	laptop.waitFor("the session list", laptop.visible("view-account")+` && document.querySelectorAll('#sessions li').length === 1`)

	// The refresh token never reaches scripts.
	if got := eval[string](laptop, `document.cookie`); got != "" {
		t.Errorf("laptop: got document.cookie %q, want the refresh cookie hidden from scripts", got)
	}
	jar, err := chromedp.Call(laptop.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{
		e.srv.URL + "/v1/refresh", e.srv.URL + "/v1/logout", e.srv.URL + "/v1/sessions", e.srv.URL + "/account/",
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Exactly the RT cookie and the device-token cookie, both host-only.
	var names []string
	for _, c := range jar.Cookies {
		names = append(names, c.Name)
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteStrict || c.Session || c.Path != "/" {
			t.Errorf("laptop: got cookie %s HttpOnly=%v Secure=%v SameSite=%v session-only=%v Path=%q, want HttpOnly Secure Strict persistent at / (what __Host- demands)",
				c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Session, c.Path)
		}
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "__Host-sessiond_device,__Host-sessiond_rt" {
		t.Errorf("laptop: got cookies %q, want __Host-sessiond_device,__Host-sessiond_rt", got)
	}

	// A wrong password on the phone is explained in words.
	phone := newPerson(t, browser, "phone", uaIPhone)
	phone.run(chromedp.Navigate(page))
	phone.waitFor("the sign-in form", phone.visible("view-signin"))
	phone.signIn(email, "not the password at all")
	phone.waitFor("the error", phone.visible("signin-error"))
	if got := eval[string](phone, `document.getElementById('signin-error').textContent`); !strings.Contains(got, "don't match") {
		t.Errorf("phone: got error %q, want it to say the email and password don't match", got)
	}
	// Guessing is throttled, and the wait is said in words.
	var said string
	for i := 0; i < 5 && !strings.Contains(said, "Too many attempts"); i++ {
		phone.run(chromedp.Evaluate[chromedp.Void](`document.getElementById('signin-error').hidden = true`))
		phone.signIn("mallory@example.com", "guess number one two three")
		phone.waitFor("the error", phone.visible("signin-error"))
		said = eval[string](phone, `document.getElementById('signin-error').textContent`)
	}
	if !strings.Contains(said, "Too many attempts. Wait ") || !strings.Contains(said, " minutes") {
		t.Errorf("phone: got error %q, want it to say how many minutes to wait (Retry-After)", said)
	}

	phone.signIn(email, password)
	phone.waitFor("the session list", phone.visible("view-account")+` && document.querySelectorAll('#sessions li').length === 2`)

	// The laptop, reloaded, resumes its session from the cookie and sees both.
	laptop.run(chromedp.Reload())
	laptop.waitFor("two sessions", laptop.visible("view-account")+` && document.querySelectorAll('#sessions li').length === 2`)
	if got, want := laptop.deviceNames(), []string{"Chrome on macOS", "Safari on iOS"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("laptop: got devices %q, want %q (current first)", got, want)
	}
	if got := eval[string](laptop, `document.querySelector('#sessions li[data-current="true"] .badge').textContent`); got != "This device" {
		t.Errorf("laptop: got current-session badge %q, want This device", got)
	}
	if got := eval[string](laptop, `document.querySelector('#sessions li .meta').textContent`); !strings.Contains(got, "127.0.0.1") || !strings.Contains(got, "just now") {
		t.Errorf("laptop: got session details %q, want the IP and a relative time", got)
	}

	screenshots(t, laptop)

	// Sign the phone out from the laptop, with the keyboard.
	laptop.run(
		chromedp.Focus(chromedp.CSS(`#sessions li[data-current="false"] button`)),
		chromedp.KeyEvent("\r"),
	)
	laptop.waitFor("one session left", `document.querySelectorAll('#sessions li').length === 1`)
	if got := eval[string](laptop, `document.getElementById('status').textContent`); !strings.Contains(got, "Signed out Safari on iOS") {
		t.Errorf("laptop: got status %q, want it to announce the sign-out", got)
	}

	// The phone's next refresh sends it back to the sign-in form.
	phone.run(chromedp.Reload())
	phone.waitFor("the sign-in form", phone.visible("view-signin"))
	if got := eval[string](phone, `document.getElementById('signin-notice').textContent`); !strings.Contains(got, "You were signed out") {
		t.Errorf("phone: got notice %q, want it to say it was signed out", got)
	}

	// Sign out everywhere ends the laptop's session too.
	laptop.run(chromedp.Click(chromedp.CSS("#signout-everywhere")))
	laptop.waitFor("the sign-in form", laptop.visible("view-signin"))
	laptop.run(chromedp.Reload())
	laptop.waitFor("the sign-in form after a reload", laptop.visible("view-signin"))
	if n := len(e.liveSessions(email)); n != 0 {
		t.Errorf("got %d live sessions after sign out everywhere, want 0", n)
	}
}

// screenshots takes the session list at a desktop and a phone width.
func screenshots(t *testing.T, p *person) {
	t.Helper()
	dir := t.TempDir()
	if *updateScreenshots {
		dir = filepath.Join("..", "..", "docs", "img")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct {
		file          string
		width, height int64
		mobile        bool
	}{
		{"account-desktop.png", 1280, 720, false},
		{"account-phone.png", 390, 844, true},
	} {
		emulate := chromedp.EmulateViewport(s.width, s.height)
		if s.mobile {
			emulate = chromedp.EmulateViewport(s.width, s.height, chromedp.EmulateScale(2), chromedp.EmulateMobile)
		}
		p.run(emulate, chromedp.Sleep(200*time.Millisecond))
		buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", s.file, err)
		}
		img, err := png.Decode(bytes.NewReader(buf))
		if err != nil {
			t.Fatalf("screenshot %s: %v", s.file, err)
		}
		if got := int64(img.Bounds().Dx()); got < s.width {
			t.Errorf("screenshot %s: got width %d, want at least %d", s.file, got, s.width)
		}
		// At phone width nothing may overflow sideways.
		if s.mobile {
			if w := eval[int](p, `document.documentElement.scrollWidth`); int64(w) > s.width {
				t.Errorf("at %dpx the page is %dpx wide, want no horizontal scrolling", s.width, w)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, s.file), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.run(chromedp.EmulateViewport(1280, 800))
}

// TestDeviceNames checks the page's user-agent parser in the browser.
func TestDeviceNames(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := newBrowser(t)
	e := newTestEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "sessiond.db"), func(c *app.Config) {
		c.PublicURL, c.Issuer = atPublicURL(t)
	})
	p := newPerson(t, browser, "page", uaMac)
	p.run(chromedp.Navigate(e.srv.URL + "/account/"))
	p.waitFor("the script", `window.sessiondAccount`)
	for _, tc := range []struct{ ua, want string }{
		{uaMac, "Chrome on macOS"},
		{uaIPhone, "Safari on iOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on Ubuntu"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0", "Opera on Linux"},
		{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", "Chrome on iPadOS"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", "Headless Chrome on Linux"},
		{"curl/8.5.0", "curl"},
		{"Go-http-client/1.1", "Go program"},
		{"", "Unknown device"},
	} {
		got := eval[string](p, fmt.Sprintf(`window.sessiondAccount.parseUA(%q).name`, tc.ua))
		if got != tc.want {
			t.Errorf("parseUA(%q): got %q, want %q", tc.ua, got, tc.want)
		}
	}
	for _, tc := range []struct {
		secondsAgo int
		want       string
	}{
		{10, "just now"}, {120, "2 minutes ago"}, {3 * 3600, "3 hours ago"}, {26 * 3600, "yesterday"}, {9 * 86400, "last week"},
	} {
		got := eval[string](p, fmt.Sprintf(`window.sessiondAccount.relativeTime(Date.now() - %d*1000)`, tc.secondsAgo))
		if got != tc.want {
			t.Errorf("relativeTime(%ds ago): got %q, want %q", tc.secondsAgo, got, tc.want)
		}
	}
}
