package main

import (
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/sessiond/sessiond/internal/app"
)

const overview = `sessiond is a self-hosted user-session service: signup, login with a
per-user session cap, refresh-token rotation, and JWT access tokens that other
services verify offline with the JWKS endpoint.

Usage:
  sessiond [serve] [flags]     run the HTTP service (the default)
  sessiond migrate [flags]     create the database or bring its schema up to date
  sessiond keys rotate [flags] add a signing key: published at once, signing later
  sessiond keys list [flags]   show every signing key
  sessiond secrets reencrypt   seal every stored secret under the newest
                               SESSIOND_ENCRYPTION_KEY
  sessiond admin-keys create NAME|list|revoke NAME
                               manage the keys of the admin API (/admin/v1)
  sessiond mail list [flags]   show the mail waiting in the outbox
  sessiond bench [flags]       drive a running sessiond and measure it
  sessiond version             show the version and the source revision
  sessiond help [COMMAND]      show this text, or a command's

Every setting is a flag and a SESSIOND_* environment variable
(-max-sessions is SESSIOND_MAX_SESSIONS); flags win. "sessiond COMMAND -h"
shows a command's help and flags.
`

// command is one command's help: what it does, and the flags worth
// listing (nil: all of them).
type command struct {
	usage, text string
	flags       []string
}

// commands is the help of each command, keyed by its name after "sessiond ".
var commands = map[string]command{
	"serve": {usage: "sessiond [serve] [flags]", text: `Run the HTTP service. It applies database migrations first, creating the
SQLite database if it does not exist yet, and logs the database it uses.`},
	"migrate": {usage: "sessiond migrate [flags]", text: `Create the database if it does not exist yet, apply the schema migrations it
lacks, and say which database that was. Safe to run while sessiond serves.`,
		flags: []string{"database-url", "db-timeout"}},
	"keys": {usage: "sessiond keys rotate|list [flags]", text: `Manage the signing keys in the database every instance shares. Both act on an
existing database only.

  rotate   add a new current signing key (see "sessiond keys rotate -h")
  list     show every signing key (see "sessiond keys list -h")`},
	"keys rotate": {usage: "sessiond keys rotate [flags]", text: `Add a new signing key to an existing database. It is published in the JWKS at
once and signs only after -activate-after, by when every instance (within
SESSIOND_KEY_RELOAD) and every verifier's JWKS cache knows it; the retired key
stays in the JWKS until every access token it signed has expired. Prints the
keys.`,
		flags: []string{"activate-after", "database-url", "db-timeout", "key-reload", "access-ttl"}},
	"keys list": {usage: "sessiond keys list [flags]", text: `Show every signing key of an existing database: kid, algorithm, created,
retired, and until when it is published in the JWKS.`,
		flags: []string{"database-url", "db-timeout", "access-ttl"}},
	"bench": {usage: "sessiond bench [flags]", text: `Drive a running sessiond over HTTP with one user and session per worker, and
report answered requests per second, latency percentiles, and errors by status
and code; requests that got no answer count as connection errors. Exits
non-zero when most requests failed. With -cleanup (the default) it removes what
it made: given an admin key in SESSIOND_BENCH_ADMIN_KEY (sessiond admin-keys
create), it deletes the users it signed up (bench-*@example.com) through the
admin API; without one it ends their sessions, and the users stay. With -dpop
every worker is a device-bound client (DPoP), so that refreshes and calls with
proofs can be compared with plain ones.`},
	"secrets": {usage: "sessiond secrets reencrypt [flags]", text: `Re-seal every secret stored in an existing database (signing keys, refresh and
login-throttle MAC secrets, webhook signing secrets, TOTP secrets) under the newest key of SESSIOND_ENCRYPTION_KEY,
encrypting those still stored in the clear. Every value is opened first, so a
missing old key or a tampered value changes nothing.`,
		flags: []string{"database-url", "db-timeout", "encryption-key-file"}},
	"admin-keys": {usage: "sessiond admin-keys create NAME|list|revoke NAME [flags]", text: `Manage the keys that authenticate the admin API (/admin/v1, Authorization:
Bearer <key>) on an existing database; none of these creates one.

  create NAME   make a key and print it, alone, on the first line of stdout;
                it is shown only this once (see "sessiond admin-keys create -h")
  list          show every key: created, last used, revoked
  revoke NAME   refuse the key from now on; its name stays taken`},
	"admin-keys create": {usage: "sessiond admin-keys create NAME [flags]", text: `Make an admin key named NAME (letters, digits, '.', '_', '-'; at most 64) in an
existing database and print it alone on the first line of stdout, so that
KEY=$(sessiond admin-keys create NAME) captures it. Only its SHA-256 is stored:
the key is never shown again. NAME appears as data.actor in the admin.request
event of every call made with the key.`,
		flags: []string{"database-url", "db-timeout"}},
	"admin-keys list": {usage: "sessiond admin-keys list [flags]", text: `Show every admin key of an existing database, revoked ones too: name, created,
last used (to the minute), revoked.`,
		flags: []string{"database-url", "db-timeout"}},
	"admin-keys revoke": {usage: "sessiond admin-keys revoke NAME [flags]", text: `Revoke the admin key named NAME: every instance refuses it (401) from its next
call. The row stays, so that the name in past events still means this key.`,
		flags: []string{"database-url", "db-timeout"}},
	"mail": {usage: "sessiond mail list [flags]", text: `Show the mail waiting in the outbox of an existing database: recipient, kind,
when it was queued, attempts so far and the last attempt's outcome. Without
SESSIOND_SMTP_URL no mail is sent and all of it waits here. -links adds each
mail's link, token included: for local development only, since a link is a
live credential (a password reset link resets the password).`},
	"mail list": {usage: "sessiond mail list [flags]", text: `Show the mail waiting in the outbox of an existing database (see "sessiond mail
-h"). -links adds each mail's link, token included: for local development only.`,
		flags: []string{"database-url", "db-timeout", "public-url", "links"}},
	"version": {usage: "sessiond version", text: `Show the module version, the Go version, and the source revision it was built
from.`},
}

// newFlagSet makes the flag set of a command (its name after "sessiond ").
// -h prints the command's help to w and makes Parse return flag.ErrHelp.
func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sessiond "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printHelp(w, name, fs) }
	return fs
}

// printHelp prints a command's help and the flags it uses, each with its
// environment variable when it has one.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	c, ok := commands[name]
	if !ok {
		c = command{usage: "sessiond " + name + " [flags]"}
	}
	fmt.Fprintf(w, "Usage: %s\n", c.usage)
	if c.text != "" {
		fmt.Fprintf(w, "\n%s\n", c.text)
	}
	if fs == nil {
		return
	}
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if c.flags != nil && !contains(c.flags, f.Name) {
			return
		}
		usage := f.Usage
		if name != "bench" {
			usage += " [" + app.EnvName(f.Name) + "]"
		}
		v := f.Value
		if e, ok := v.(*explained); ok {
			v = e.Value // so that the flag package names its type
		}
		shown.Var(v, f.Name, usage)
		shown.Lookup(f.Name).DefValue = f.DefValue
	})
	fmt.Fprintln(w, "\nFlags:")
	shown.SetOutput(w)
	shown.PrintDefaults()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// runHelp is `sessiond help [COMMAND]`.
func runHelp(args []string, stdout io.Writer) error {
	name := strings.Join(args, " ")
	if name == "" || name == "help" {
		fmt.Fprint(stdout, overview)
		return nil
	}
	if _, ok := commands[name]; !ok {
		return fmt.Errorf("no help for %q (\"sessiond -h\" lists the commands)", name)
	}
	// Through the command itself, so that its flags are listed.
	return helpOf(name, stdout)
}

// helpOf prints a command's help with its flags.
func helpOf(name string, w io.Writer) error {
	fs := newFlagSet(name, w)
	switch name {
	case "bench":
		bindBenchFlags(fs)
	case "version", "keys", "admin-keys":
		fs = nil
	default:
		c := app.DefaultConfig()
		bindFlags(fs, &c)
	}
	printHelp(w, name, fs)
	return nil
}

// runVersion is `sessiond version`: what a bug report needs to name the
// build.
func runVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("version", stdout)
	fs.Usage = func() { printHelp(stdout, "version", nil) }
	if err := parseArgs(fs, args, explain(fs)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionText())
	return nil
}

func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "sessiond (no build information)"
	}
	v := "sessiond " + bi.Main.Version + " " + bi.GoVersion
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		v += " revision " + rev
		if at != "" {
			v += " " + at
		}
		if modified == "true" {
			v += " (modified)"
		}
	}
	return v
}
