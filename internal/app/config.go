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
	"github.com/sessiond/sessiond/mail"
	"github.com/sessiond/sessiond/password"
)

// Config is the whole configuration of `sessiond serve` (docs/API.md,
// "Configuration"): DefaultConfig, overridden by SESSIOND_* variables, then
// by flags; Validate names the first bad setting.
type Config struct {
	Addr        string
	AdminAddr   string // pprof and metrics; empty: off
	DatabaseURL string
	Policy      sessiond.Policy
	AccessTTL   time.Duration
	// PublicURL is where people and clients reach sessiond
	// (https://auth.example.com); empty means http:// + Addr, which only a
	// single instance on a concrete host may rely on (see Validate). The
	// issuer defaults to it.
	PublicURL        string
	Issuer           string
	Audience         string
	LoginMaxFailures int
	LoginMaxIPFail   int
	// LoginMaxAccountFailures is the per-email ceiling over every client
	// without a device token; LoginMaxFailures counts per (email, client).
	LoginMaxAccountFailures int
	LoginWindow             time.Duration
	// SignupRate is how many signups one client IP may make per hour.
	SignupRate        int
	PasswordMinLength int
	PasswordMinScore  int
	TrustedProxies    string
	SweepInterval     time.Duration
	DBTimeout         time.Duration
	ShutdownTimeout   time.Duration
	KeyReload         time.Duration
	// StartTimeout is how long serve waits at start for a database it cannot
	// reach before giving up.
	StartTimeout time.Duration
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
	// EncryptionKey (SESSIOND_ENCRYPTION_KEY, no flag, so that the key
	// never shows in a process listing) or the file EncryptionKeyFile
	// names holds the keys that seal secrets at rest; see SealKeys.
	EncryptionKey     string
	EncryptionKeyFile string
	// EventRetention is how long events (and finished outbox messages)
	// are kept before the sweep deletes them.
	EventRetention time.Duration
	// WebhookAllowPrivate lets webhook endpoints be on loopback, private
	// and link-local addresses, which are refused by default so that the
	// admin API cannot be used to reach inside the operator's network.
	WebhookAllowPrivate bool
	// SMTPURL (SESSIOND_SMTP_URL, no flag: it holds the relay's password)
	// is the SMTP server account mail goes through; empty keeps mail in
	// the outbox. MailFrom is the sender (default mail.DefaultFrom of the
	// public URL), ProductName the service's name in mail.
	SMTPURL     string
	MailFrom    string
	ProductName string
	// ResetTTL and VerifyTTL are the lifetimes of password-reset and
	// email-verification links.
	ResetTTL  time.Duration
	VerifyTTL time.Duration
	// ReauthWindow is how recent a sign-in must be for a sensitive change
	// that does not carry the credential itself.
	ReauthWindow time.Duration
	// RequireVerifiedEmail refuses login until the address is confirmed,
	// and makes signup answer a new and a taken address alike.
	RequireVerifiedEmail bool
	// WebAuthnOrigins are comma-separated origins, besides the public
	// URL's, whose pages may run passkey ceremonies (an app on another
	// subdomain of the RP ID).
	WebAuthnOrigins string
	// DPoP is how logins treat DPoP proofs (sessiond.DPoPMode: optional,
	// required or off); DPoPNonce makes every proof carry a server nonce.
	DPoP      string
	DPoPNonce bool
}

// DefaultConfig is the documented defaults (docs/API.md).
func DefaultConfig() Config {
	return Config{
		Addr:                    "127.0.0.1:8080",
		DatabaseURL:             "sqlite:sessiond.db",
		Policy:                  sessiond.DefaultPolicy(),
		AccessTTL:               15 * time.Minute,
		Audience:                "sessiond",
		LoginMaxFailures:        10,
		LoginMaxIPFail:          100,
		LoginMaxAccountFailures: 100,
		SignupRate:              20,
		LoginWindow:             15 * time.Minute,
		PasswordMinLength:       12,
		PasswordMinScore:        2,
		SweepInterval:           time.Minute,
		DBTimeout:               5 * time.Second,
		ShutdownTimeout:         15 * time.Second,
		KeyReload:               30 * time.Second,
		StartTimeout:            time.Minute,
		CookieMode:              true,
		CookieSecure:            true,
		PasswordHash:            password.DefaultParams(),
		HashWait:                2 * time.Second,
		EventRetention:          2160 * time.Hour,
		ProductName:             "sessiond",
		ResetTTL:                30 * time.Minute,
		VerifyTTL:               24 * time.Hour,
		ReauthWindow:            10 * time.Minute,
		DPoP:                    string(sessiond.DPoPOptional),
	}
}

// EnvName is the environment variable of a flag: SESSIOND_ followed by
// its name upper-cased with '-' as '_'.
func EnvName(flagName string) string {
	return "SESSIOND_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Validate returns an error naming the first bad setting of `sessiond
// serve`.
func (c *Config) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	if err := c.validatePublicURL(); err != nil {
		return err
	}
	_, _, err := c.MailOptions()
	return err
}

// MailOptions checks the mail settings of a serving instance and returns
// the SMTP configuration (nil without SESSIOND_SMTP_URL) and the sender's
// options. The errors are one line naming the setting, never the URL's
// password.
func (c *Config) MailOptions() (*mail.Config, mail.Options, error) {
	opt := mail.Options{Site: mail.Site{Product: c.ProductName, PublicURL: c.PublicBaseURL()}, From: c.MailFrom}
	if err := opt.Site.Validate(); err != nil {
		return nil, opt, fmt.Errorf("%s (-product-name): %v", EnvName("product-name"), err)
	}
	if c.MailFrom != "" {
		if _, err := mail.ParseFrom(c.MailFrom); err != nil {
			return nil, opt, fmt.Errorf("%v (-mail-from)", err)
		}
	}
	if c.SMTPURL == "" {
		return nil, opt, nil
	}
	smtp, err := mail.ParseSMTPURL(c.SMTPURL)
	if err != nil {
		return nil, opt, err
	}
	return &smtp, opt, nil
}

// ValidateSettings is Validate without the public URL, which only a serving
// instance uses: the operator commands (migrate, keys) check this.
func (c *Config) ValidateSettings() error {
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
	case c.Policy.IdleTTL < c.AccessTTL:
		// sessiond's own Bearer endpoints check that the session is live, so
		// a session idle-expiring before its AT would refuse fresh tokens.
		return bad("idle-ttl", "%v is shorter than %s (-access-ttl) %v; an access token must not outlive an idle session",
			c.Policy.IdleTTL, EnvName("access-ttl"), c.AccessTTL)
	case strings.TrimSpace(c.Issuer) == "":
		return bad("issuer", "must not be empty")
	case strings.TrimSpace(c.Audience) == "":
		return bad("audience", "must not be empty")
	case c.LoginMaxFailures < 1:
		return bad("login-max-failures", "%d is less than 1", c.LoginMaxFailures)
	case c.LoginMaxIPFail < c.LoginMaxFailures:
		return bad("login-max-ip-failures", "%d is less than login-max-failures %d", c.LoginMaxIPFail, c.LoginMaxFailures)
	case c.LoginMaxAccountFailures < c.LoginMaxFailures:
		return bad("login-max-account-failures", "%d is less than login-max-failures %d", c.LoginMaxAccountFailures, c.LoginMaxFailures)
	case c.SignupRate < 1:
		return bad("signup-rate", "%d is less than 1", c.SignupRate)
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
	case c.StartTimeout < 0:
		return bad("start-timeout", "%v is negative", c.StartTimeout)
	case c.EventRetention < time.Hour:
		return bad("event-retention", "%v is shorter than 1h", c.EventRetention)
	case c.ResetTTL < time.Minute || c.ResetTTL > 24*time.Hour:
		return bad("reset-ttl", "%v is not between 1m and 24h", c.ResetTTL)
	case c.VerifyTTL < time.Minute || c.VerifyTTL > 30*24*time.Hour:
		return bad("verify-ttl", "%v is not between 1m and 720h", c.VerifyTTL)
	case c.ReauthWindow < time.Minute || c.ReauthWindow > 24*time.Hour:
		return bad("reauth-window", "%v is not between 1m and 24h", c.ReauthWindow)
	}
	switch sessiond.DPoPMode(c.DPoP) {
	case sessiond.DPoPOptional, sessiond.DPoPRequired, sessiond.DPoPOff:
	default:
		return bad("dpop", "%q is not optional, required or off", c.DPoP)
	}
	if _, err := httpapi.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return bad("trusted-proxies", "%v", err)
	}
	if _, err := ParseAllowedOrigins(c.AllowedOrigins); err != nil {
		return bad("allowed-origins", "%v", err)
	}
	if _, err := ParseAllowedOrigins(c.WebAuthnOrigins); err != nil {
		return bad("webauthn-origins", "%v", err)
	}
	if !c.CookieSecure && !IsLoopbackHost(hostOf(c.Addr)) {
		return bad("cookie-secure", "false is only for development on http://localhost; the listen address %q is not loopback", c.Addr)
	}
	if c.HashSlots < 0 || c.HashSlots > 1024 {
		return bad("hash-slots", "%d is not between 0 (automatic) and 1024", c.HashSlots)
	}
	if _, err := c.SealKeys(); err != nil {
		return err
	}
	if err := c.PasswordHash.Validate(); err != nil {
		return fmt.Errorf("password hash parameters: %v", err)
	}
	return nil
}

// PublicBaseURL is the URL sessiond is reached at: PublicURL, or by default
// http:// + the listen address; without a trailing slash.
func (c *Config) PublicBaseURL() string {
	if c.PublicURL == "" {
		return "http://" + c.Addr
	}
	return strings.TrimSuffix(c.PublicURL, "/")
}

// validatePublicURL refuses a public URL that clients could not use or that
// would differ between instances: the default issuer is derived from it, so
// two instances on one database with different or wildcard listen addresses
// would refuse each other's tokens.
func (c *Config) validatePublicURL() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s (-%s): %s", EnvName("public-url"), "public-url", fmt.Sprintf(format, args...))
	}
	kind, _, _ := SplitDatabaseURL(c.DatabaseURL)
	if c.PublicURL == "" && kind == "postgres" {
		return bad("must be set with PostgreSQL, where instances share one issuer: the URL clients reach sessiond at, such as https://auth.example.com")
	}
	raw := c.PublicBaseURL()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return bad("%q is not an absolute http(s) URL such as https://auth.example.com", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("%q must have no user, query or fragment", raw)
	}
	if h := u.Hostname(); h == "" || isWildcardHost(h) {
		what := "the URL"
		if c.PublicURL == "" {
			what = fmt.Sprintf("the default %q, derived from the listen address %q,", raw, c.Addr)
		}
		return bad("%s has no host clients can reach; set it to the URL clients use, such as https://auth.example.com", what)
	}
	return nil
}

// isWildcardHost reports whether host is an unspecified address (0.0.0.0,
// ::), which a server can listen on but a client cannot connect to.
func isWildcardHost(host string) bool {
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.IsUnspecified()
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
