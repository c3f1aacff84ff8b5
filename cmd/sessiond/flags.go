package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

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
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the `URL` clients reach sessiond at, e.g. https://auth.example.com (default http:// + listen address; required with PostgreSQL)")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "iss claim (default the public URL)")
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
	fs.DurationVar(&c.StartTimeout, "start-timeout", c.StartTimeout, "how long serve waits at start for a database it cannot reach")
	fs.DurationVar(&c.KeyReload, "key-reload", c.KeyReload, "how often signing keys are re-read from the database")
	fs.BoolVar(&c.CookieMode, "cookie-mode", c.CookieMode, "let browsers get the refresh token as an HttpOnly cookie (X-Sessiond-Cookie: 1), and serve /account")
	fs.BoolVar(&c.CookieSecure, "cookie-secure", c.CookieSecure, "mark the refresh cookie Secure; false only for http://localhost development")
	fs.StringVar(&c.EncryptionKeyFile, "encryption-key-file", c.EncryptionKeyFile, "file holding the key(s) that encrypt secrets at rest (SESSIOND_ENCRYPTION_KEY holds them directly; it has no flag, so the key never shows in a process list)")
	fs.DurationVar(&c.EventRetention, "event-retention", c.EventRetention, "how long events and finished webhook deliveries are kept")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", c.WebhookAllowPrivate, "allow webhook URLs on loopback, link-local and private addresses (refused by default against server-side request forgery)")
	fs.StringVar(&c.MailFrom, "mail-from", c.MailFrom, "sender of every mail, an `address` such as \"Example <no-reply@example.com>\" (default sessiond <no-reply@ the public URL's host>); the SMTP relay is SESSIOND_SMTP_URL, which has no flag so that its password never shows in a process list")
	fs.StringVar(&c.ProductName, "product-name", c.ProductName, "the service's name in mail subjects and bodies")
	fs.DurationVar(&c.ResetTTL, "reset-ttl", c.ResetTTL, "lifetime of a password-reset link")
	fs.DurationVar(&c.VerifyTTL, "verify-ttl", c.VerifyTTL, "lifetime of an email-verification link")
	fs.DurationVar(&c.ReauthWindow, "reauth-window", c.ReauthWindow, "how recent a sign-in must be for a sensitive change (password, email, deleting the account, second factors, passkeys) without the credential in the request")
	fs.BoolVar(&c.RequireVerifiedEmail, "require-verified-email", c.RequireVerifiedEmail, "refuse login (403 email_not_verified) until the address is confirmed; signup then answers 202 for a new and a taken address alike")
	fs.StringVar(&c.WebAuthnOrigins, "webauthn-origins", c.WebAuthnOrigins, "comma-separated origins, besides the public URL's, whose pages may register and use passkeys (https://app.example.com)")
	fs.StringVar(&c.DPoP, "dpop", c.DPoP, "device-bound sessions (DPoP): `optional` binds a session whose login carries a DPoP proof, required refuses logins without one, off binds none (sessions bound before still need their proofs)")
	fs.BoolVar(&c.DPoPNonce, "dpop-nonce", c.DPoPNonce, "require a server nonce in every DPoP proof (401 use_dpop_nonce with a DPoP-Nonce header to retry with)")
	fs.StringVar(&c.AllowedOrigins, "allowed-origins", c.AllowedOrigins, "comma-separated origins (https://app.example.com) allowed CORS with credentials and cookie mode")
}

// parseConfig reads the environment, then args, into a validated Config.
// Every command reads every setting, so that one environment serves them
// all; only `sessiond serve` checks the public URL, which only it uses.
func parseConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (app.Config, error) {
	c := app.DefaultConfig()
	bindFlags(fs, &c)
	failed := explain(fs)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		name := app.EnvName(f.Name)
		if v := getenv(name); v != "" {
			if fs.Set(f.Name, v) != nil {
				err = fmt.Errorf("%s=%q: want %s", name, v, (*failed).want)
			}
		}
	})
	if err != nil {
		return c, err
	}
	if err := parseArgs(fs, args, failed); err != nil {
		return c, err
	}
	c.EncryptionKey = getenv("SESSIOND_ENCRYPTION_KEY")
	c.SMTPURL = getenv("SESSIOND_SMTP_URL")
	if c.Issuer == "" {
		c.Issuer = c.PublicBaseURL()
	}
	if fs.Name() == "sessiond serve" {
		return c, c.Validate()
	}
	return c, c.ValidateSettings()
}

// parseArgs parses args into fs and turns the flag package's complaints into
// one line that says what was expected; fs prints nothing itself.
// failed is what explain returned for fs.
func parseArgs(fs *flag.FlagSet, args []string, failed **badValue) error {
	*failed = nil
	fs.SetOutput(io.Discard)
	// The flag package shows the usage on every error; only -h should.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil && *failed != nil:
		b := *failed
		return fmt.Errorf("-%s=%q: want %s", b.flag, b.value, b.want)
	case err != nil:
		return fmt.Errorf("%v (%q lists the flags)", err, fs.Name()+" -h")
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (%q lists the flags)", fs.Arg(0), fs.Name()+" -h")
	}
	return nil
}

// explain wraps every flag of fs in explained; the result points at the
// last value that did not parse.
func explain(fs *flag.FlagSet) **badValue {
	failed := new(*badValue)
	fs.VisitAll(func(f *flag.Flag) {
		f.Value = &explained{Value: f.Value, flag: f.Name, failed: failed}
	})
	return failed
}

// explained is a flag.Value that, when a value does not parse, records which
// flag it was and what the flag wants.
type explained struct {
	flag.Value
	flag   string
	failed **badValue
}

type badValue struct{ flag, value, want string }

func (e *explained) Set(v string) error {
	if err := e.Value.Set(v); err != nil {
		want := wants(e.Value)
		if want == "" {
			want = unwrapFlagErr(err).Error()
		}
		*e.failed = &badValue{flag: e.flag, value: v, want: want}
		return errors.New("want " + want)
	}
	return nil
}

// IsBoolFlag keeps "-rotate-refresh" alone meaning true.
func (e *explained) IsBoolFlag() bool {
	b, ok := e.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Get exposes the wrapped value, as flag.Getter.
func (e *explained) Get() any {
	if g, ok := e.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

// wants says what kind of value v takes, in the words of an error message.
func wants(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a Go duration such as 15m or 900s"
	case bool:
		return "true or false"
	case int, int64, uint, uint64:
		return "a whole number"
	}
	return ""
}

// unwrapFlagErr drops the flag package's wording around a parse error.
func unwrapFlagErr(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// String also works on the zero value, which flag.PrintDefaults makes to
// tell whether a default is worth printing.
func (e *explained) String() string {
	if e == nil || e.Value == nil {
		return ""
	}
	return e.Value.String()
}
