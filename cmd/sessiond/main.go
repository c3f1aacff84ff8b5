// Command sessiond runs the session service (`sessiond serve`, the default)
// and its operator tasks (`sessiond migrate`, `sessiond keys`). main only
// wires the process to run, which tests call directly; serve.go builds the
// service, and help.go holds every command's help.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		// -h printed the help, to stdout: asking for it is no failure.
	case err != nil:
		fmt.Fprintln(os.Stderr, "sessiond:", err)
		os.Exit(1)
	}
}

// run is the whole program; it returns instead of exiting so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && isHelpFlag(args[0]) {
		// "sessiond -h" is the overview, not serve's flags.
		fmt.Fprint(stdout, overview)
		return flag.ErrHelp
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
	case "admin-keys":
		return runAdminKeys(ctx, args, getenv, stdout, stderr)
	case "mail":
		return runMail(ctx, args, getenv, stdout)
	case "bench":
		return runBench(ctx, args, getenv, stdout, stderr)
	case "version":
		return runVersion(args, stdout)
	case "help":
		return runHelp(args, stdout)
	}
	return fmt.Errorf("unknown command %q (\"sessiond -h\" lists the commands)", cmd)
}

func isHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}
