package app_test

import (
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/app"
)

func TestValidateBrowserSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*app.Config)
		wantErr string // the setting named, or "" for a valid config
	}{
		{"defaults", func(*app.Config) {}, ""},
		{"https origins", func(c *app.Config) { c.AllowedOrigins = "https://app.example.com, https://admin.example.com:8443" }, ""},
		{"http localhost origin", func(c *app.Config) { c.AllowedOrigins = "http://localhost:3000,http://127.0.0.1:5173" }, ""},
		{"http origin elsewhere", func(c *app.Config) { c.AllowedOrigins = "http://app.example.com" }, "SESSIOND_ALLOWED_ORIGINS"},
		{"origin with a path", func(c *app.Config) { c.AllowedOrigins = "https://app.example.com/login" }, "SESSIOND_ALLOWED_ORIGINS"},
		{"not an origin", func(c *app.Config) { c.AllowedOrigins = "app.example.com" }, "SESSIOND_ALLOWED_ORIGINS"},
		{"wildcard", func(c *app.Config) { c.AllowedOrigins = "*" }, "SESSIOND_ALLOWED_ORIGINS"},
		{"insecure cookie on loopback", func(c *app.Config) { c.CookieSecure = false; c.Addr = "127.0.0.1:8080" }, ""},
		{"insecure cookie on localhost", func(c *app.Config) { c.CookieSecure = false; c.Addr = "localhost:8080" }, ""},
		{"insecure cookie on ::1", func(c *app.Config) { c.CookieSecure = false; c.Addr = "[::1]:8080" }, ""},
		{"insecure cookie on all interfaces", func(c *app.Config) { c.CookieSecure = false; c.Addr = ":8080" }, "SESSIOND_COOKIE_SECURE"},
		{"insecure cookie on a public address", func(c *app.Config) { c.CookieSecure = false; c.Addr = "10.0.0.5:8080" }, "SESSIOND_COOKIE_SECURE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := app.DefaultConfig()
			c.Issuer = "https://sessiond.test"
			tc.set(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestBrowserSettingsReachTheServer(t *testing.T) {
	c := app.DefaultConfig()
	c.AllowedOrigins = " https://App.Example.com , "
	c.CookieSecure = false
	b := c.Browser()
	if !b.CookieMode || !b.InsecureCookie {
		t.Errorf("got CookieMode=%v InsecureCookie=%v, want true true", b.CookieMode, b.InsecureCookie)
	}
	if got := strings.Join(b.AllowedOrigins, ","); got != "https://app.example.com" {
		t.Errorf("got allowed origins %q, want https://app.example.com", got)
	}
	if got := b.CookieName(); got != "sessiond_rt" {
		t.Errorf("got cookie name %q, want sessiond_rt without Secure", got)
	}
}
