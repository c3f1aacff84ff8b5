package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/dpop"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/mail"
	"github.com/sessiond/sessiond/outbox"
	"github.com/sessiond/sessiond/passkey"
	"github.com/sessiond/sessiond/password"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/seal"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/token"
	"github.com/sessiond/sessiond/web"
	"github.com/sessiond/sessiond/webhook"
)

// DPoPNoncePeriod is how often the DPoP server nonce changes; one of the
// current or the previous period is accepted, so a nonce works for up to
// two periods.
const DPoPNoncePeriod = 2 * time.Minute

// Store is a sessiond.Store with its schema migrations.
type Store interface {
	sessiond.Store
	sessiond.AdminStore
	sessiond.PasskeyStore
	Migrate(ctx context.Context) error
}

// OpenStore opens the database that cfg.DatabaseURL names. Its stored
// secrets are sealed and opened by New, or by Sealed for operator commands.
func OpenStore(ctx context.Context, cfg Config) (Store, error) {
	kind, addr, err := SplitDatabaseURL(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "sqlite":
		return sqlite.Open(ctx, addr, sqlite.Options{QueryTimeout: cfg.DBTimeout})
	default:
		return postgres.Open(ctx, addr, postgres.Options{QueryTimeout: cfg.DBTimeout})
	}
}

// App is a running sessiond without its listener: its HTTP handler, and the
// background jobs (ReloadKeys, Sweep) its runner starts.
type App struct {
	Handler  http.Handler
	Store    Store
	Keys     *token.Keyring
	clock    sessiond.Clock
	logger   *slog.Logger
	Registry *prometheus.Registry
	Hasher   *password.Hasher
	// Auth is the use cases, the public API's and the admin API's user
	// half, for the wiring that serves them.
	Auth     *auth.Service
	policy   sessiond.Policy
	schedule sessiond.KeySchedule
	// outbox delivers webhooks (DeliverOutbox); retention is how long
	// events are kept (Sweep).
	outbox        *outbox.Worker
	outboxMetrics *outbox.Metrics
	retention     time.Duration
	// sealKeys seal the secrets auth stores itself (TOTP secrets).
	sealKeys *seal.Keyring
}

// New migrates the database, makes sure a signing key and the
// refresh-token and login-throttle secrets exist in it, and wires the HTTP API. The caller owns
// db. A database whose secrets are sealed under no key of cfg's
// SESSIOND_ENCRYPTION_KEY is refused with an error naming that setting.
func New(ctx context.Context, cfg Config, db Store, logger *slog.Logger, clock sessiond.Clock) (*App, error) {
	// The session rules need the access-token lifetime too: it bounds the
	// refresh-token ancestor walk (sessiond.Policy.MaxAncestorSteps).
	cfg.Policy.AccessTTL = cfg.AccessTTL
	keys, err := cfg.SealKeys()
	if err != nil {
		return nil, err
	}
	sealed := withSealing(db, keys)
	a := &App{Store: sealed, Keys: token.NewKeyring(cfg.AccessTTL), clock: clock, logger: logger,
		policy: cfg.Policy, schedule: sessiond.KeySchedule{AccessTTL: cfg.AccessTTL}, retention: cfg.EventRetention,
		sealKeys: keys}
	if err := a.init(ctx, cfg); err != nil {
		return nil, sealError(err)
	}
	switch n := sealed.clear.Load(); {
	case !sealed.keys.Enabled():
		logger.Warn("secrets are stored in the clear: signing keys and the refresh-token secret are readable from a database dump; set SESSIOND_ENCRYPTION_KEY to encrypt them")
	case n > 0:
		logger.Warn("some secrets are still stored in the clear; run `sessiond secrets reencrypt` to encrypt them", "count", n)
	}
	return a, nil
}

func (a *App) init(ctx context.Context, cfg Config) error {
	if err := a.Store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	k, err := token.GenerateKey(a.clock())
	if err != nil {
		return err
	}
	if _, err := a.Store.EnsureCurrentKey(ctx, k); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if err := a.LoadKeys(ctx); err != nil {
		return err
	}
	candidate := make([]byte, 32)
	rand.Read(candidate)
	secret, err := a.Store.EnsureSecret(ctx, "refresh_token_mac", candidate)
	if err != nil {
		return fmt.Errorf("refresh token secret: %w", err)
	}
	refresher, err := token.NewRefresher(secret)
	if err != nil {
		return err
	}
	candidate = make([]byte, 32)
	rand.Read(candidate)
	throttleSecret, err := a.Store.EnsureSecret(ctx, "login_throttle_mac", candidate)
	if err != nil {
		return fmt.Errorf("login throttle secret: %w", err)
	}
	dpopConfig := auth.DPoP{Mode: sessiond.DPoPMode(cfg.DPoP)}
	if cfg.DPoPNonce {
		// Every instance holds the same database secret, so each issues
		// and accepts the others' nonces; dpop.NewNonces derives its own
		// key from it under a label of its own.
		dpopConfig.Nonces = dpop.NewNonces(throttleSecret, DPoPNoncePeriod)
	}

	a.Hasher = password.NewHasher(cfg.PasswordHash, cfg.HashSlots, cfg.HashWait)
	a.Registry = prometheus.NewRegistry()
	a.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sessiond_password_hashes_total",
			Help: "argon2id computations (signup, login, and the equal-cost check for unknown emails).",
		}, func() float64 { return float64(a.Hasher.Computed()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sessiond_password_hash_memory_bytes",
			Help: "argon2id working memory the hashing slots hold for reuse; handed back after a second without hashing.",
		}, func() float64 { return float64(a.Hasher.MemoryHeld()) }),
	)
	if p, ok := a.Store.(interface{ PoolStats() []sessiond.PoolStats }); ok {
		a.Registry.MustRegister(newPoolCollector(p.PoolStats))
	}
	outboxMetrics, err := outbox.NewMetrics(a.Registry)
	if err != nil {
		return err
	}
	a.outboxMetrics = outboxMetrics
	senders := map[string]outbox.Sender{
		sessiond.ChannelWebhook: webhook.NewSender(a.Store, webhook.Options{AllowPrivate: cfg.WebhookAllowPrivate, Clock: a.clock}),
	}
	smtp, mailOpt, err := cfg.MailOptions()
	if err != nil {
		return err
	}
	mailOpt.Clock = a.clock
	if smtp != nil {
		sender, err := mail.NewSender(*smtp, mailOpt)
		if err != nil {
			return err
		}
		senders[sessiond.ChannelMail] = sender
		a.logger.Info("sending mail", "smtp", smtp.String())
	} else {
		a.logger.Warn("no SESSIOND_SMTP_URL: account mail (verification, password reset) stays in the outbox unsent; `sessiond mail list` shows it")
	}
	a.outbox = outbox.New(a.Store, senders, outbox.Options{Clock: a.clock, Metrics: outboxMetrics, Logger: a.logger})
	allowPrivate := cfg.WebhookAllowPrivate
	rp, err := relyingParty(cfg, a.logger)
	if err != nil {
		return err
	}
	svc := auth.New(auth.Deps{
		Store:             a.Store,
		Hasher:            a.Hasher,
		Issuer:            token.NewIssuer(a.Keys, cfg.Issuer, cfg.Audience, cfg.AccessTTL),
		Verifier:          token.NewVerifier(a.Keys, cfg.Issuer, cfg.Audience, a.clock, 5*time.Second),
		Refresher:         refresher,
		Clock:             a.clock,
		Policy:            cfg.Policy,
		PasswordMinLength: cfg.PasswordMinLength,
		PasswordMinScore:  cfg.PasswordMinScore,
		Throttle: auth.Throttle{
			MaxFailures:        cfg.LoginMaxFailures,
			MaxAccountFailures: cfg.LoginMaxAccountFailures,
			MaxIPFailures:      cfg.LoginMaxIPFail,
			Window:             cfg.LoginWindow,
			SignupsPerHour:     cfg.SignupRate,
			Secret:             throttleSecret,
		},
		Events: newEvents(a.Registry),
		Logger: a.logger,
		Admin:  a.Store,
		WebhookURLCheck: func(ctx context.Context, url string) error {
			return webhook.ValidateURL(ctx, url, allowPrivate, nil)
		},
		OutboxNotify: a.outbox.Notify,
		Accounts: auth.Accounts{
			ResetTTL:  cfg.ResetTTL,
			VerifyTTL: cfg.VerifyTTL,
			Mail:      accountMail,
		},
		ReauthWindow:         cfg.ReauthWindow,
		RequireVerifiedEmail: cfg.RequireVerifiedEmail,
		Secrets:              a.sealKeys,
		RelyingParty:         rp,
		DPoP:                 dpopConfig,
	})
	a.Auth = svc
	var dpopNonce func() string
	if cfg.DPoPNonce {
		dpopNonce = svc.DPoPNonce
	}
	trusted, err := httpapi.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	a.Handler = httpapi.NewServer(httpapi.Deps{
		Logger:         a.logger,
		Auth:           svc,
		JWKS:           a.Keys,
		Ready:          a.Store,
		Instruments:    httpapi.NewMetrics(a.Registry),
		TrustedProxies: trusted,
		Browser:        cfg.Browser(),
		Account:        accountPage(cfg),
		Admin:          svc,
		AdminAuth:      svc,
		Accounts:       svc,
		MFA:            svc,
		Passkeys:       svc,
		PublicURL:      cfg.PublicBaseURL(),
		DPoPNonce:      dpopNonce,
	})
	return nil
}

// relyingParty is the WebAuthn relying party of the public URL; nil, with
// a note in the log, when its host is an address, which cannot be an RP
// ID: the default http://127.0.0.1:8080 runs without passkeys.
func relyingParty(cfg Config, logger *slog.Logger) (sessiond.RelyingParty, error) {
	origins, err := ParseAllowedOrigins(cfg.WebAuthnOrigins)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvName("webauthn-origins"), err)
	}
	rp, err := passkey.New(passkey.Options{PublicURL: cfg.PublicBaseURL(), Origins: origins, Name: cfg.ProductName})
	if errors.Is(err, passkey.ErrNoDomain) {
		logger.Info("passkeys are off: " + err.Error() + "; set SESSIOND_PUBLIC_URL to a URL with a host name")
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvName("public-url"), err)
	}
	return rp, nil
}

// accountMail is the outbox row of an account flow's mail.
func accountMail(m auth.AccountMail, eventID string, now time.Time) (*sessiond.OutboxMessage, error) {
	var msg mail.Message
	switch m.Kind {
	case sessiond.TokenVerifyEmail:
		msg = mail.VerifyEmail(m.To, m.Token, m.ExpiresAt)
	case sessiond.TokenResetPassword:
		msg = mail.ResetPassword(m.To, m.Token, m.ExpiresAt)
	case sessiond.TokenChangeEmail: // to the new address, which it confirms
		msg = mail.VerifyEmail(m.To, m.Token, m.ExpiresAt)
	case auth.MailPasswordChanged:
		msg = mail.PasswordChanged(m.To, m.At)
	case auth.MailEmailChanged:
		msg = mail.EmailChanged(m.To, m.NewEmail, m.At)
	case auth.MailAccountExists:
		msg = mail.AccountExists(m.To, "", time.Time{})
	default:
		return nil, fmt.Errorf("no mail for token kind %q", m.Kind)
	}
	return mail.NewOutboxMessage(msg, eventID, now)
}

// DeliverOutbox runs the outbox worker until ctx ends, then waits for the
// sends in flight. Every instance runs one; their leases keep them from
// sending one message at the same time.
func (a *App) DeliverOutbox(ctx context.Context) { a.outbox.Run(ctx) }

// Metrics serves the registry in the Prometheus text format, for the
// operators' listener; the API handler never serves it.
func (a *App) Metrics() http.Handler {
	return promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{})
}

// accountPage is the account page (web/), which signs in with cookie mode
// and so is served only when cookie mode is on.
func accountPage(cfg Config) http.Handler {
	if !cfg.CookieMode {
		return nil
	}
	return web.AccountHandler()
}

// LoadKeys installs the database's signing keys into the keyring, and
// erases the private part of retired keys no live token needs any more.
func (a *App) LoadKeys(ctx context.Context) error {
	keys, err := a.Store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	now := a.clock()
	if err := a.Keys.Set(keys, now); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	for i := range keys {
		if a.schedule.ErasableAt(&keys[i], now) {
			// Every instance may do this; the update is idempotent.
			cutoff := now.Add(-(a.schedule.AccessTTL + sessiond.RetiredKeyMargin))
			if _, err := a.Store.EraseRetiredKeys(ctx, cutoff); err != nil {
				return fmt.Errorf("erase retired signing keys: %w", err)
			}
			break
		}
	}
	return nil
}

// ReloadKeys re-reads the signing keys every interval, so a rotation made by
// another instance or the CLI is picked up without a restart.
func (a *App) ReloadKeys(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if err := a.LoadKeys(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("keeping the signing keys loaded before", "error", err)
		}
	})
}

// every runs f each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
