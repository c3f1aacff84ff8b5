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
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/token"
)

// runKeys is `sessiond keys rotate|list`: signing-key management on the
// database that every instance shares. A rotated-in key is published at
// once and signs only after -activate-after (sessiond.KeyActivationDelay),
// so that every instance (SESSIOND_KEY_RELOAD) and every verifier's JWKS
// cache knows it before the first token it signs.
func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		printHelp(stdout, "keys", nil)
		return flag.ErrHelp
	case len(args) == 0 || (args[0] != "rotate" && args[0] != "list"):
		return errors.New(`keys needs "rotate" or "list" ("sessiond keys -h" says more)`)
	}
	action := args[0]
	fs := newFlagSet("keys "+action, stdout)
	activateAfter := sessiond.KeyActivationDelay
	if action == "rotate" {
		fs.DurationVar(&activateAfter, "activate-after", activateAfter,
			"how long the new key is only published before it signs; 0 signs at once (an emergency: verifiers that have not refetched the JWKS refuse the new tokens until they do)")
	}
	cfg, err := parseConfig(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	if activateAfter < 0 {
		return fmt.Errorf("-activate-after: %v is negative", activateAfter)
	}
	db, err := openSealed(ctx, cfg)
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
		k.ActivatesAt = now.Add(activateAfter)
		if err := db.RotateKey(ctx, k, now); err != nil {
			return fmt.Errorf("rotate key: %w", err)
		}
		fmt.Fprintf(stdout, "new current signing key %s; published at each instance's next key reload, signs from %s (after %v)\n",
			k.ID, k.ActivatesAt.Format(time.RFC3339), activateAfter)
	}
	keys, err := db.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	printKeys(stdout, keys, cfg.AccessTTL)
	return nil
}

// openSealed is openMigrated with stored secrets sealed and opened under
// the configured encryption keys.
func openSealed(ctx context.Context, cfg app.Config) (app.Store, error) {
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s, err := app.Sealed(db, cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func printKeys(w io.Writer, keys []sessiond.SigningKey, accessTTL time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALGORITHM\tCREATED\tSIGNS FROM\tRETIRED\tPUBLISHED")
	now := sessiond.SystemClock()
	sched := sessiond.KeySchedule{AccessTTL: accessTTL}
	signer := sched.Signer(keys, now)
	for i := range keys {
		k := &keys[i]
		retired, published := "-", "yes"
		switch {
		case k == signer:
			published = "yes (signing)"
		case k.Current():
			published = "yes (pending)"
		case sched.PublishedAt(k, now):
			published = "until " + sched.PublishedUntil(k).Format(time.RFC3339)
		default:
			published = "no"
		}
		if k.Erased() {
			published += " (private part erased)"
		}
		if !k.Current() {
			retired = k.RetiredAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339),
			k.ActivatesAt.Format(time.RFC3339), retired, published)
	}
	tw.Flush()
}
