// Package app wires sessiond together: the configuration (Config), the
// store it names (OpenStore), and App, the service with its HTTP handler and
// background jobs, without a listener. cmd/sessiond runs it as a process;
// tests and the examples run it in-process.
package app

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/password"
)

// Config is the whole configuration of `sessiond serve` (docs/API.md,
// "Configuration"): DefaultConfig, overridden by SESSIOND_* variables, then
// by flags; Validate names the first bad setting.
type Config struct {
	Addr              string
	AdminAddr         string // pprof and metrics; empty: off
	DatabaseURL       string
	Policy            sessiond.Policy
	AccessTTL         time.Duration
	Issuer            string
	Audience          string
	LoginMaxFailures  int
	LoginMaxIPFail    int
	LoginWindow       time.Duration
	PasswordMinLength int
	PasswordMinScore  int
	TrustedProxies    string
	SweepInterval     time.Duration
	DBTimeout         time.Duration
	ShutdownTimeout   time.Duration
	KeyReload         time.Duration
	// CookieMode, CookieSecure and AllowedOrigins are the browser settings
	// (httpapi/cookie.go): whether the RT may be delivered in an
	// HttpOnly cookie (and the account page is served), whether that cookie
	// is Secure, and the comma-separated other origins allowed CORS with
	// credentials.
	CookieMode     bool
	CookieSecure   bool
	AllowedOrigins string
	// PasswordHash are the argon2id parameters of new hashes, and HashWait
	// how long a login waits for a free hashing slot before a 503. Not
	// flags: the defaults are OWASP's minimum; tests lower them.
	PasswordHash password.Params
	HashWait     time.Duration
	// HashSlots is how many password hashes run at once (0: one per core).
	HashSlots int
}

// DefaultConfig is the documented defaults (docs/API.md).
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		DatabaseURL:       "sqlite:sessiond.db",
		Policy:            sessiond.DefaultPolicy(),
		AccessTTL:         15 * time.Minute,
		Audience:          "sessiond",
		LoginMaxFailures:  10,
		LoginMaxIPFail:    100,
		LoginWindow:       15 * time.Minute,
		PasswordMinLength: 12,
		PasswordMinScore:  2,
		SweepInterval:     time.Minute,
		DBTimeout:         5 * time.Second,
		ShutdownTimeout:   15 * time.Second,
		KeyReload:         30 * time.Second,
		CookieMode:        true,
		CookieSecure:      true,
		PasswordHash:      password.DefaultParams(),
		HashWait:          2 * time.Second,
	}
}

// EnvName is the environment variable of a flag: SESSIOND_ followed by
// its name upper-cased with '-' as '_'.
func EnvName(flagName string) string {
	return "SESSIOND_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate returns an error naming the first bad setting.
func (c *Config) Validate() error {
	bad := func(flagName string, format string, args ...any) error {
		return fmt.Errorf("%s (-%s): %s", EnvName(flagName), flagName, fmt.Sprintf(format, args...))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		return bad("addr", "%q is not host:port", c.Addr)
	}
	if _, port, err := net.SplitHostPort(c.AdminAddr); c.AdminAddr != "" && (err != nil || port == "") {
		return bad("admin-addr", "%q is not host:port", c.AdminAddr)
	}
	if _, _, err := SplitDatabaseURL(c.DatabaseURL); err != nil {
		return bad("database-url", "%v", err)
	}
	switch p := c.Policy; {
	case p.MaxSessions < 1 || p.MaxSessions > 1000:
		return bad("max-sessions", "%d is not between 1 and 1000", p.MaxSessions)
	case p.SessionTTL < time.Minute:
		return bad("session-ttl", "%v is shorter than 1m", p.SessionTTL)
	case p.IdleTTL < time.Minute:
		return bad("idle-ttl", "%v is shorter than 1m", p.IdleTTL)
	case p.ReuseGrace < 0 || p.ReuseGrace > 5*time.Minute:
		return bad("reuse-grace", "%v is not between 0s and 5m", p.ReuseGrace)
	}
	switch {
	case c.AccessTTL < time.Second || c.AccessTTL > 24*time.Hour:
		return bad("access-ttl", "%v is not between 1s and 24h", c.AccessTTL)
	case c.AccessTTL > c.Policy.SessionTTL:
		return bad("access-ttl", "%v is longer than the session TTL %v", c.AccessTTL, c.Policy.SessionTTL)
	case strings.TrimSpace(c.Issuer) == "":
		return bad("issuer", "must not be empty")
	case strings.TrimSpace(c.Audience) == "":
		return bad("audience", "must not be empty")
	case c.LoginMaxFailures < 1:
		return bad("login-max-failures", "%d is less than 1", c.LoginMaxFailures)
	case c.LoginMaxIPFail < c.LoginMaxFailures:
		return bad("login-max-ip-failures", "%d is less than login-max-failures %d", c.LoginMaxIPFail, c.LoginMaxFailures)
	case c.LoginWindow < time.Second:
		return bad("login-window", "%v is shorter than 1s", c.LoginWindow)
	case c.PasswordMinLength < 8 || c.PasswordMinLength > 64:
		return bad("password-min-length", "%d is not between 8 and 64", c.PasswordMinLength)
	case c.PasswordMinScore < 0 || c.PasswordMinScore > 4:
		return bad("password-min-score", "%d is not between 0 and 4", c.PasswordMinScore)
	case c.SweepInterval < time.Second:
		return bad("sweep-interval", "%v is shorter than 1s", c.SweepInterval)
	case c.DBTimeout < 100*time.Millisecond:
		return bad("db-timeout", "%v is shorter than 100ms", c.DBTimeout)
	case c.ShutdownTimeout < 0:
		return bad("shutdown-timeout", "%v is negative", c.ShutdownTimeout)
	case c.KeyReload < time.Second || c.KeyReload > time.Minute:
		return bad("key-reload", "%v is not between 1s and 1m", c.KeyReload)
	}
	if _, err := httpapi.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return bad("trusted-proxies", "%v", err)
	}
	if _, err := ParseAllowedOrigins(c.AllowedOrigins); err != nil {
		return bad("allowed-origins", "%v", err)
	}
	if !c.CookieSecure && !IsLoopbackHost(hostOf(c.Addr)) {
		return bad("cookie-secure", "false is only for development on http://localhost; the listen address %q is not loopback", c.Addr)
	}
	if c.HashSlots < 0 || c.HashSlots > 1024 {
		return bad("hash-slots", "%d is not between 0 (automatic) and 1024", c.HashSlots)
	}
	if err := c.PasswordHash.Validate(); err != nil {
		return fmt.Errorf("password hash parameters: %v", err)
	}
	return nil
}

// Browser is the httpapi view of the browser settings; call it on a
// validated Config.
func (c *Config) Browser() httpapi.Browser {
	origins, _ := ParseAllowedOrigins(c.AllowedOrigins)
	return httpapi.Browser{CookieMode: c.CookieMode, InsecureCookie: !c.CookieSecure, AllowedOrigins: origins}
}

// ParseAllowedOrigins reads SESSIOND_ALLOWED_ORIGINS: comma-separated
// origins, each scheme://host[:port] with nothing after it, as browsers send
// them in Origin. https is required except for loopback hosts, since a page
// served over plain http can be rewritten by anyone on the path.
func ParseAllowedOrigins(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q is not an origin like https://app.example.com", f)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && IsLoopbackHost(u.Hostname()):
		case u.Scheme == "http":
			return nil, fmt.Errorf("%q: plain http is allowed for localhost only", f)
		default:
			return nil, fmt.Errorf("%q: the scheme must be https", f)
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return out, nil
}

// IsLoopbackHost reports whether host (no port) is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsLoopback()
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

// SplitDatabaseURL tells the store kind and its address from a database URL.
func SplitDatabaseURL(u string) (kind, addr string, err error) {
	switch {
	case strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(u, "sqlite:")
		if path == "" {
			return "", "", errors.New(`"sqlite:" needs a path, as in sqlite:sessiond.db`)
		}
		return "sqlite", path, nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "postgres", u, nil
	}
	return "", "", fmt.Errorf("%q is neither sqlite:PATH nor postgres://...", RedactURL(u))
}

// RedactURL hides a password in a URL before it is shown.
func RedactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	if user, _, hasPw := strings.Cut(userinfo, ":"); hasPw {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return u
}
