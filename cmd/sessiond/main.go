// Command sessiond runs the session service (`sessiond serve`, the default)
// and its operator tasks (`sessiond migrate`). main only wires the process to
// run, which tests call directly; serve.go builds the service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sessiond/sessiond/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h printed the usage.
	case err != nil:
		fmt.Fprintln(os.Stderr, "sessiond:", err)
		os.Exit(1)
	}
}

const usage = `sessiond is a self-hosted user-session service: signup, login with a
per-user session cap, refresh-token rotation, and JWT access tokens that other
services verify offline with the JWKS endpoint.

Usage:
  sessiond [serve] [flags]   run the HTTP service (the default); applies
                             database migrations first
  sessiond migrate [flags]   apply database migrations and exit
  sessiond keys rotate [-activate-after 10m] [flags]
                             add a new signing key: published at once, it
                             signs after -activate-after, once every instance
                             and verifier knows it; the retired key stays in
                             the JWKS until every access token it signed has
                             expired
  sessiond keys list [flags] show every signing key: kid, algorithm, created,
                             signs from, retired, and until when it is published
  sessiond secrets reencrypt [flags]
                             encrypt every stored secret under the newest
                             SESSIOND_ENCRYPTION_KEY (also those in the clear)
  sessiond bench [-op signup|login|refresh|me|mixed] [-c N] [-d DURATION]
                 [-url URL] [-json]
                             drive a running sessiond and report req/s,
                             latency percentiles and errors by status and code
  sessiond help              show this text

Every flag can also be set with its SESSIOND_* environment variable
(-max-sessions is SESSIOND_MAX_SESSIONS); flags win. Run
"sessiond serve -h" for the flags.
`

// run is the whole program; it returns instead of exiting so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, args, getenv, stdout, stderr)
	case "secrets":
		return runSecrets(ctx, args, getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// newFlagSet makes a subcommand's flag set whose -h prints the overview too.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sessiond "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintf(stderr, "\nFlags of %q (environment variable in brackets):\n", "sessiond "+name)
		fs.VisitAll(func(f *flag.Flag) {
			f.Usage += " [" + app.EnvName(f.Name) + "]"
		})
		fs.PrintDefaults()
	}
	return fs
}
