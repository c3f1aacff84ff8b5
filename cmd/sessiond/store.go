package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/seal"
)

// sqlitePath is the absolute path of cfg's SQLite database, or "" when cfg
// names PostgreSQL. A relative sqlite:PATH is relative to the working
// directory, which is where a wrong database usually comes from: every
// message names the absolute path.
func sqlitePath(cfg app.Config) (string, error) {
	kind, addr, err := app.SplitDatabaseURL(cfg.DatabaseURL)
	if err != nil || kind != "sqlite" {
		return "", err
	}
	abs, err := filepath.Abs(addr)
	if err != nil {
		return "", fmt.Errorf("SESSIOND_DATABASE_URL: %w", err)
	}
	return abs, nil
}

// databaseName is how messages name cfg's database: the absolute SQLite
// path, or the PostgreSQL URL without its password.
func databaseName(cfg app.Config) string {
	if p, err := sqlitePath(cfg); err == nil && p != "" {
		return p
	}
	return app.RedactURL(cfg.DatabaseURL)
}

// withAbsolutePath makes cfg's SQLite path absolute, so the store opens the
// very file the messages name.
func withAbsolutePath(cfg app.Config) (app.Config, error) {
	p, err := sqlitePath(cfg)
	if err == nil && p != "" {
		cfg.DatabaseURL = "sqlite:" + p
	}
	return cfg, err
}

// openExisting opens the database of cfg for a command that acts on data
// already there (keys, and every admin command), and never creates one: a
// SQLite file that does not exist is an error saying how to name the right
// one, rather than a new empty database that the command would act on in
// vain. It does not migrate; see openMigrated.
func openExisting(ctx context.Context, cfg app.Config) (app.Store, error) {
	cfg, err := withAbsolutePath(cfg)
	if err != nil {
		return nil, err
	}
	if p, _ := sqlitePath(cfg); p != "" {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: set SESSIOND_DATABASE_URL (or -database-url) to the one sessiond serves, e.g. sqlite:/var/lib/sessiond/sessiond.db (a relative path is relative to the working directory); \"sessiond migrate\" creates a new one", p)
		}
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", databaseName(cfg), err)
	}
	return db, nil
}

// openMigrated is openExisting with the schema brought up to date, which the
// commands' queries need.
func openMigrated(ctx context.Context, cfg app.Config) (app.Store, error) {
	db, err := openExisting(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, startError(cfg, err)
	}
	return db, nil
}

// startError is a database failure at start in one line: what is
// misconfigured when waiting will not help, the error otherwise.
func startError(cfg app.Config, err error) error {
	if msg := postgres.Misconfigured(err); msg != "" {
		return fmt.Errorf("database %s: %s", databaseName(cfg), msg)
	}
	return fmt.Errorf("database %s: %w", databaseName(cfg), err)
}

// startApp builds the App, which migrates and reads the keys. A database
// that cannot be reached yet (PostgreSQL starting, a network blip) is waited
// for with backoff, saying so in the log, for up to cfg.StartTimeout; a
// misconfiguration (authentication, missing database or privileges), or any
// SQLite failure, ends the start at once: a restart loop would not cure it.
func startApp(ctx context.Context, cfg app.Config, db app.Store, logger *slog.Logger) (*app.App, error) {
	deadline := time.Now().Add(cfg.StartTimeout)
	pause := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		a, err := app.New(ctx, cfg, db, logger, sessiond.SystemClock)
		if err == nil {
			return a, nil
		}
		kind, _, _ := app.SplitDatabaseURL(cfg.DatabaseURL)
		// A wrong or missing encryption key stays wrong however long serve
		// waits, like a misconfigured database.
		var sealed *seal.Error
		if kind != "postgres" || postgres.Misconfigured(err) != "" || errors.As(err, &sealed) || ctx.Err() != nil {
			return nil, startError(cfg, err)
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("database %s still unreachable after %d attempts in %v (SESSIOND_START_TIMEOUT): %w", databaseName(cfg), attempt, cfg.StartTimeout, err)
		}
		pause = min(pause, time.Until(deadline))
		logger.Warn("database unreachable; retrying", "database", databaseName(cfg),
			"attempt", attempt, "retry_in", pause.String(), "gives_up_in", time.Until(deadline).Round(time.Second).String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, startError(cfg, err)
		case <-time.After(pause):
		}
		pause = min(max(pause, 250*time.Millisecond)*2, 5*time.Second)
	}
}
