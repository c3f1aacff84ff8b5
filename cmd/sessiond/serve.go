package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/password"
)

// runMigrate is `sessiond migrate`, the one command that may create a
// database, and so says which one it created or updated.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(newFlagSet("migrate", stdout), args, getenv)
	if err != nil {
		return err
	}
	if cfg, err = withAbsolutePath(cfg); err != nil {
		return err
	}
	created := false
	if p, _ := sqlitePath(cfg); p != "" {
		_, err := os.Stat(p)
		created = errors.Is(err, fs.ErrNotExist)
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database %s: %w", databaseName(cfg), err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return startError(cfg, err)
	}
	if created {
		fmt.Fprintf(stdout, "sessiond: created database %s; its schema is up to date\n", databaseName(cfg))
	} else {
		fmt.Fprintf(stdout, "sessiond: database %s: schema is up to date\n", databaseName(cfg))
	}
	return nil
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := newFlagSet("serve", stdout)
	cfg, err := parseConfig(fset, args, getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	warnUnknownEnv(logger, os.Environ(), knownEnv(fset))
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(cfg))
	}
	if cfg, err = withAbsolutePath(cfg); err != nil {
		return err
	}
	if p, _ := sqlitePath(cfg); p != "" {
		release, err := lockDatabase(p)
		if err != nil {
			return err
		}
		defer release()
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			logger.Info("creating a new SQLite database", "database", p)
		}
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open database %s: %w", databaseName(cfg), err)
	}
	defer db.Close()
	a, err := startApp(ctx, cfg, db, logger)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.AdminAddr != "" {
		admin, err := serveAdmin(cfg.AdminAddr, a, logger, stdout)
		if err != nil {
			return err
		}
		defer admin.Close()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go a.ReloadKeys(ctx, cfg.KeyReload)
	go a.Sweep(ctx, cfg.SweepInterval)
	// The outbox worker stops with ctx: it finishes recording the sends in
	// flight (cut short ones are released, to be sent again) before the
	// deferred Close, which it must not outlive.
	var background sync.WaitGroup
	defer background.Wait()
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker() // before the Wait: a failed Serve returns with ctx live
	background.Go(func() { a.DeliverOutbox(workerCtx) })
	logger.Info("sessiond listening", "addr", ln.Addr().String(), "public_url", cfg.PublicBaseURL(), "issuer", cfg.Issuer, "database", databaseName(cfg))
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

// serveAdmin starts the operator listener: pprof and /metrics, on an address
// of its own so that neither is exposed with the API.
func serveAdmin(addr string, a *app.App, logger *slog.Logger, stdout io.Writer) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", app.Cmdline) // pprof's own shows secrets given as flags
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/metrics", a.Metrics())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on admin address: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	logger.Info("sessiond admin listening", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "sessiond admin (pprof, metrics) on http://%s\n", ln.Addr())
	return srv, nil
}

// memoryLimit is the soft memory limit sessiond sets unless GOMEMLIMIT is:
// 48 MiB for everything but password hashing, plus what the hashing slots
// hold at once. Hashing makes no garbage (each slot reuses its memory), so
// the limit mostly makes the runtime hand freed pages back to the system
// promptly.
func memoryLimit(cfg app.Config) int64 {
	slots := cfg.HashSlots
	if slots == 0 {
		slots = password.DefaultSlots()
	}
	return 48<<20 + int64(slots)*int64(cfg.PasswordHash.Memory)<<10
}
