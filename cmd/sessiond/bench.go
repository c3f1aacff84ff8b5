package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sessiond/sessiond/internal/loadgen"
)

// benchFlags are bench's settings; bench talks to sessiond over HTTP only
// and so reads no SESSIOND_* variable.
type benchFlags struct {
	opt    loadgen.Options
	asJSON bool
}

func bindBenchFlags(fs *flag.FlagSet) *benchFlags {
	b := &benchFlags{opt: loadgen.Options{Cleanup: true}}
	fs.StringVar(&b.opt.URL, "url", "http://127.0.0.1:8080", "base URL of the sessiond to drive")
	fs.StringVar(&b.opt.Op, "op", "refresh", "operation: "+strings.Join(loadgen.Ops, "|"))
	fs.IntVar(&b.opt.Concurrency, "c", 16, "concurrent workers, each with its own user and session")
	fs.DurationVar(&b.opt.Duration, "d", 10*time.Second, "measured duration (after set-up)")
	fs.BoolVar(&b.opt.Cleanup, "cleanup", b.opt.Cleanup, "remove what the run made when it is over: its users, given an admin key in $"+benchAdminKeyEnv+", else their sessions")
	fs.BoolVar(&b.opt.DPoP, "dpop", false, "be device-bound clients (DPoP): each worker's session is bound to its own key, and every login, refresh and access-token call carries a fresh proof made for -url, which must then be sessiond's public URL")
	fs.BoolVar(&b.asJSON, "json", false, "print the result as JSON")
	return b
}

// benchAdminKeyEnv names the variable that gives bench an admin key, kept
// out of the command line (and so out of ps).
const benchAdminKeyEnv = "SESSIOND_BENCH_ADMIN_KEY"

// runBench is `sessiond bench`: a load generator for a running sessiond.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stdout)
	b := bindBenchFlags(fs)
	if err := parseArgs(fs, args, explain(fs)); err != nil {
		return err
	}
	opt := b.opt
	opt.AdminKey = getenv(benchAdminKeyEnv)
	if isTerminal(stderr) && !b.asJSON {
		opt.Progress = stderr
	}
	r, err := loadgen.Run(ctx, opt)
	if err != nil {
		return err
	}
	if b.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		printBench(stdout, r, opt.Cleanup)
	}
	// A run that mostly failed measured the failures, not sessiond: say so
	// in the exit status, for scripts.
	if attempts := r.Attempts(); attempts == 0 || (attempts-r.OK)*2 > attempts {
		return fmt.Errorf("bench: %d of %d requests failed (%d got no answer)", r.Attempts()-r.OK, r.Attempts(), r.ConnectionErrors)
	}
	return nil
}

func printBench(w io.Writer, r *loadgen.Result, cleanup bool) {
	op := r.Op
	if r.DPoP {
		op += " (DPoP)"
	}
	fmt.Fprintf(w, "%s  c=%d  %.1fs  %d requests answered  %.0f req/s\n", op, r.Concurrency, r.Seconds, r.Requests, r.RPS)
	fmt.Fprintf(w, "latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.P50, r.P90, r.P99, r.Max)
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "errors      none")
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "errors      %-40s %d\n", k, r.Errors[k])
	}
	switch {
	case cleanup && r.UsersDeleted > 0 || cleanup && r.Users == 0:
		fmt.Fprintf(w, "cleanup     deleted %d of the %d users the run made (%s)\n", r.UsersDeleted, r.Users, r.UserPattern)
	case cleanup:
		fmt.Fprintf(w, "cleanup     ended the sessions of %d users; the %d users (%s) stay: set %s to an admin key (sessiond admin-keys create) to delete them\n", r.SessionsEnded, r.Users, r.UserPattern, benchAdminKeyEnv)
	default:
		fmt.Fprintf(w, "left        %d users (%s) and their sessions\n", r.Users, r.UserPattern)
	}
}

// isTerminal reports whether w is a character device, where a live
// progress line makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
