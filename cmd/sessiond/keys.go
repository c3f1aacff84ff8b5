package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/token"
)

// runKeys is `sessiond keys rotate|list`: signing-key management on the
// database that every instance shares. Instances pick a rotation up at their
// next key reload (SESSIOND_KEY_RELOAD), without a restart.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		printHelp(stdout, "keys", nil)
		return flag.ErrHelp
	case len(args) == 0 || (args[0] != "rotate" && args[0] != "list"):
		return errors.New(`keys needs "rotate" or "list" ("sessiond keys -h" says more)`)
	}
	action := args[0]
	cfg, err := parseConfig(newFlagSet("keys "+action, stdout), args[1:], getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if action == "rotate" {
		now := sessiond.SystemClock()
		k, err := token.GenerateKey(now)
		if err != nil {
			return err
		}
		if err := db.RotateKey(ctx, k, now); err != nil {
			return fmt.Errorf("rotate key: %w", err)
		}
		fmt.Fprintf(stdout, "new current signing key %s; running instances sign with it within %v\n", k.ID, cfg.KeyReload)
	}
	keys, err := db.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	printKeys(stdout, keys, cfg.AccessTTL)
	return nil
}

func printKeys(w io.Writer, keys []sessiond.SigningKey, accessTTL time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALGORITHM\tCREATED\tRETIRED\tPUBLISHED")
	now := sessiond.SystemClock()
	for _, k := range keys {
		retired, published := "-", "yes (current)"
		if !k.Current() {
			retired = k.RetiredAt.Format(time.RFC3339)
			if until := k.RetiredAt.Add(accessTTL + token.RetiredKeyMargin); until.After(now) {
				published = "until " + until.Format(time.RFC3339)
			} else {
				published = "no"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), retired, published)
	}
	tw.Flush()
}
