package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
)

// runAdminKeys is `sessiond admin-keys create NAME|list|revoke NAME`: the
// credentials of the admin API. A key is printed once, when it is made;
// the database keeps only its SHA-256.
func runAdminKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		printHelp(stdout, "admin-keys", nil)
		return flag.ErrHelp
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		return errors.New(`admin-keys needs "create NAME", "list" or "revoke NAME" ("sessiond admin-keys -h" says more)`)
	}
	action, args := args[0], args[1:]
	fs := newFlagSet("admin-keys "+action, stdout)
	var name string
	if action != "list" {
		if len(args) > 0 && isHelpFlag(args[0]) {
			_, err := parseConfig(fs, args[:1], getenv) // prints the help
			return err
		}
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("admin-keys %s needs the key's NAME first (\"sessiond admin-keys %s -h\" says more)", action, action)
		}
		name, args = args[0], args[1:]
		if err := sessiond.ValidAdminKeyName(name); err != nil {
			return fmt.Errorf("NAME %q: %s", name, sessiond.ErrorMessage(err))
		}
	}
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	now := sessiond.SystemClock()
	switch action {
	case "create":
		key, hash := sessiond.NewAdminKey()
		if err := db.CreateAdminKey(ctx, &sessiond.AdminKey{Name: name, Hash: hash, CreatedAt: now}); err != nil {
			return fmt.Errorf("create admin key: %s", storeMessage(err))
		}
		// The key alone on stdout, so that KEY=$(sessiond admin-keys
		// create NAME) captures it; the note goes to stderr.
		fmt.Fprintln(stdout, key)
		fmt.Fprintf(stderr, "sessiond: admin key %q created; this is the only time it is shown: store it now (Authorization: Bearer <key>)\n", name)
	case "revoke":
		if err := db.RevokeAdminKey(ctx, name, now); err != nil {
			return fmt.Errorf("revoke admin key: %s", storeMessage(err))
		}
		fmt.Fprintf(stdout, "admin key %q is revoked; calls with it are refused from now on\n", name)
	case "list":
		keys, err := db.AdminKeys(ctx)
		if err != nil {
			return fmt.Errorf("list admin keys: %w", err)
		}
		printAdminKeys(stdout, keys)
	}
	return nil
}

// storeMessage is a store error as a command's message: the client-safe text
// for a coded outcome, the whole error otherwise.
func storeMessage(err error) string {
	switch sessiond.ErrorCode(err) {
	case sessiond.CodeInvalidRequest, sessiond.CodeNotFound:
		return sessiond.ErrorMessage(err)
	}
	return err.Error()
}

func printAdminKeys(w io.Writer, keys []sessiond.AdminKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED\tLAST USED\tREVOKED")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format(time.RFC3339)
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, when(k.CreatedAt), when(k.LastUsedAt), when(k.RevokedAt))
	}
	tw.Flush()
}
