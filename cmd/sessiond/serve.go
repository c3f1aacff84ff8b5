package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/password"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/token"
)

// store is a sessiond.Store with its schema migrations.
type store interface {
	sessiond.Store
	Migrate(ctx context.Context) error
}

// openStore opens the database that cfg.DatabaseURL names.
func openStore(ctx context.Context, cfg Config) (store, error) {
	kind, addr, err := splitDatabaseURL(cfg.DatabaseURL)
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

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(newFlagSet("migrate", stderr), args, getenv)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintln(stdout, "sessiond: database schema is up to date")
	return nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(newFlagSet("serve", stderr), args, getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	db, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	a, err := newApp(ctx, cfg, db, logger, sessiond.SystemClock)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go a.reloadKeys(ctx, cfg.KeyReload)
	go a.sweep(ctx, cfg.SweepInterval)
	logger.Info("sessiond listening", "addr", ln.Addr().String(), "database", redactURL(cfg.DatabaseURL))
	fmt.Fprintf(stdout, "sessiond listening on http://%s\n", ln.Addr())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Stop accepting, let in-flight requests finish, then (deferred) close
	// the database.
	logger.Info("sessiond shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// app is a running sessiond without its listener: what tests drive.
type app struct {
	handler  http.Handler
	store    store
	keys     *token.Keyring
	clock    sessiond.Clock
	logger   *slog.Logger
	registry *prometheus.Registry
	hasher   *password.Hasher
	policy   sessiond.Policy
	window   time.Duration // of login throttling
}

// newApp migrates the database, makes sure a signing key and the
// refresh-token secret exist in it, and wires the HTTP API. The caller owns db.
func newApp(ctx context.Context, cfg Config, db store, logger *slog.Logger, clock sessiond.Clock) (*app, error) {
	a := &app{store: db, keys: token.NewKeyring(cfg.AccessTTL), clock: clock, logger: logger,
		policy: cfg.Policy, window: cfg.LoginWindow}
	if err := a.init(ctx, cfg); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *app) init(ctx context.Context, cfg Config) error {
	if err := a.store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	k, err := token.GenerateKey(a.clock())
	if err != nil {
		return err
	}
	if _, err := a.store.EnsureCurrentKey(ctx, k); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	if err := a.loadKeys(ctx); err != nil {
		return err
	}
	candidate := make([]byte, 32)
	rand.Read(candidate)
	secret, err := a.store.EnsureSecret(ctx, "refresh_token_mac", candidate)
	if err != nil {
		return fmt.Errorf("refresh token secret: %w", err)
	}
	refresher, err := token.NewRefresher(secret)
	if err != nil {
		return err
	}

	a.hasher = password.NewHasher(cfg.PasswordHash, 0, cfg.HashWait)
	svc := auth.New(auth.Deps{
		Store:             a.store,
		Hasher:            a.hasher,
		Issuer:            token.NewIssuer(a.keys, cfg.Issuer, cfg.Audience, cfg.AccessTTL),
		Verifier:          token.NewVerifier(a.keys, cfg.Issuer, cfg.Audience, a.clock, 5*time.Second),
		Refresher:         refresher,
		Clock:             a.clock,
		Policy:            cfg.Policy,
		PasswordMinLength: cfg.PasswordMinLength,
		PasswordMinScore:  cfg.PasswordMinScore,
		Throttle: auth.Throttle{
			MaxFailures:   cfg.LoginMaxFailures,
			MaxIPFailures: cfg.LoginMaxIPFail,
			Window:        cfg.LoginWindow,
		},
		Logger: a.logger,
	})
	trusted, err := httpapi.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "sessiond_password_hashes_total",
			Help: "argon2id computations (signup, login, and the equal-cost check for unknown emails).",
		}, func() float64 { return float64(a.hasher.Computed()) }),
	)
	a.handler = httpapi.NewServer(httpapi.Deps{
		Logger:         a.logger,
		Auth:           svc,
		JWKS:           a.keys,
		Ready:          a.store,
		Metrics:        promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}),
		Instruments:    httpapi.NewMetrics(a.registry),
		TrustedProxies: trusted,
	})
	return nil
}

// loadKeys installs the database's signing keys into the keyring.
func (a *app) loadKeys(ctx context.Context) error {
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	if err := a.keys.Set(keys, a.clock()); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	return nil
}

// reloadKeys re-reads the signing keys every interval, so a rotation made by
// another instance or the CLI is picked up without a restart.
func (a *app) reloadKeys(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.loadKeys(ctx); err != nil && ctx.Err() == nil {
				a.logger.Warn("keeping the signing keys loaded before", "error", err)
			}
		}
	}
}
