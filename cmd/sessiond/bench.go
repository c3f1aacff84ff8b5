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

// runBench is `sessiond bench`: a load generator for a running sessiond.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sessiond bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opt := loadgen.Options{}
	fs.StringVar(&opt.URL, "url", "http://127.0.0.1:8080", "base URL of the sessiond to drive")
	fs.StringVar(&opt.Op, "op", "refresh", "operation: "+strings.Join(loadgen.Ops, "|"))
	fs.IntVar(&opt.Concurrency, "c", 16, "concurrent workers, each with its own user and session")
	fs.DurationVar(&opt.Duration, "d", 10*time.Second, "measured duration (after set-up)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if isTerminal(stderr) && !*asJSON {
		opt.Progress = stderr
	}
	r, err := loadgen.Run(ctx, opt)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "%s  c=%d  %.1fs  %d requests  %.0f req/s\n", r.Op, r.Concurrency, r.Seconds, r.Requests, r.RPS)
	fmt.Fprintf(stdout, "latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.P50, r.P90, r.P99, r.Max)
	if len(r.Errors) == 0 {
		fmt.Fprintln(stdout, "errors      none")
		return nil
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "errors      %-40s %d\n", k, r.Errors[k])
	}
	return nil
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
