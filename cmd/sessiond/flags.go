package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/sessiond/sessiond/internal/app"
)

// bindFlags binds c's fields to fs. Each flag's environment variable is
// SESSIOND_ followed by its name upper-cased with '-' as '_'.
func bindFlags(fs *flag.FlagSet, c *app.Config) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address `host:port`")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "listen address of pprof and /metrics (`host:port`; empty: off)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "`sqlite:PATH` (embedded) or postgres://...")
	fs.IntVar(&c.Policy.MaxSessions, "max-sessions", c.Policy.MaxSessions, "live sessions per user; the least recently used is evicted beyond it")
	fs.DurationVar(&c.AccessTTL, "access-ttl", c.AccessTTL, "access token lifetime")
	fs.DurationVar(&c.Policy.SessionTTL, "session-ttl", c.Policy.SessionTTL, "absolute session lifetime")
	fs.DurationVar(&c.Policy.IdleTTL, "idle-ttl", c.Policy.IdleTTL, "session lifetime since its last use")
	fs.BoolVar(&c.Policy.Rotate, "rotate-refresh", c.Policy.Rotate, "rotate the refresh token on every refresh")
	fs.DurationVar(&c.Policy.ReuseGrace, "reuse-grace", c.Policy.ReuseGrace, "how long a just-superseded refresh token still works")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "iss claim (default http:// + listen address)")
	fs.StringVar(&c.Audience, "audience", c.Audience, "aud claim")
	fs.IntVar(&c.LoginMaxFailures, "login-max-failures", c.LoginMaxFailures, "failed logins per email from one client IP per window before 429")
	fs.IntVar(&c.LoginMaxAccountFailures, "login-max-account-failures", c.LoginMaxAccountFailures, "failed logins per email from all clients without a device token per window before 429")
	fs.IntVar(&c.LoginMaxIPFail, "login-max-ip-failures", c.LoginMaxIPFail, "failed logins per client IP across emails per window before 429")
	fs.DurationVar(&c.LoginWindow, "login-window", c.LoginWindow, "window of login-max-failures")
	fs.IntVar(&c.SignupRate, "signup-rate", c.SignupRate, "signups per client IP per hour before 429")
	fs.IntVar(&c.PasswordMinLength, "password-min-length", c.PasswordMinLength, "shortest password accepted at signup (8-64)")
	fs.IntVar(&c.PasswordMinScore, "password-min-score", c.PasswordMinScore, "zxcvbn strength (0-4) a new password needs")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "comma-separated CIDRs whose X-Forwarded-For is believed")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often expired sessions are deleted")
	fs.IntVar(&c.HashSlots, "hash-slots", c.HashSlots, "password hashes run at once, each holding the argon2 memory (0: one per core)")
	fs.DurationVar(&c.DBTimeout, "db-timeout", c.DBTimeout, "deadline of every database call")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long a shutdown waits for in-flight requests")
	fs.DurationVar(&c.KeyReload, "key-reload", c.KeyReload, "how often signing keys are re-read from the database")
	fs.BoolVar(&c.CookieMode, "cookie-mode", c.CookieMode, "let browsers get the refresh token as an HttpOnly cookie (X-Sessiond-Cookie: 1), and serve /account")
	fs.BoolVar(&c.CookieSecure, "cookie-secure", c.CookieSecure, "mark the refresh cookie Secure; false only for http://localhost development")
	fs.StringVar(&c.EncryptionKeyFile, "encryption-key-file", c.EncryptionKeyFile, "file holding the key(s) that encrypt secrets at rest (SESSIOND_ENCRYPTION_KEY holds them directly; it has no flag, so the key never shows in a process list)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", c.AllowedOrigins, "comma-separated origins (https://app.example.com) allowed CORS with credentials and cookie mode")
}

// parseConfig reads the environment, then args, into a validated Config.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (app.Config, error) {
	c := app.DefaultConfig()
	bindFlags(fs, &c)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		name := app.EnvName(f.Name)
		if v := getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, unwrapFlagErr(e))
			}
		}
	})
	if err != nil {
		return c, err
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.EncryptionKey = getenv("SESSIOND_ENCRYPTION_KEY")
	if c.Issuer == "" {
		c.Issuer = "http://" + c.Addr
	}
	return c, c.Validate()
}

// unwrapFlagErr drops the flag package's wording around a parse error.
func unwrapFlagErr(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
