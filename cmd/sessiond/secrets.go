package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sessiond/sessiond/internal/app"
)

// runSecrets is `sessiond secrets reencrypt`: seal every stored secret
// (signing keys' private parts, server secrets, webhook signing secrets,
// TOTP secrets) under the newest key of SESSIOND_ENCRYPTION_KEY, including
// those still stored in the clear. Run it after adding a key in front of
// the list; then the old key can go.
func runSecrets(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch {
	case len(args) > 0 && isHelpFlag(args[0]):
		printHelp(stdout, "secrets", nil)
		return flag.ErrHelp
	case len(args) == 0 || args[0] != "reencrypt":
		return errors.New(`secrets needs "reencrypt" ("sessiond secrets -h" says more)`)
	}
	cfg, err := parseConfig(newFlagSet("secrets", stdout), args[1:], getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := app.ReencryptSecrets(ctx, db, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-encrypted %d secrets under the newest key; every stored secret is now sealed by it\n", n)
	return nil
}
