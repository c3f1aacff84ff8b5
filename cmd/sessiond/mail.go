package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sessiond/sessiond/mail"
)

// mailListLimit bounds what `sessiond mail list` prints.
const mailListLimit = 1000

// runMail is `sessiond mail list`: the mail waiting in the outbox, which
// is all of it while no SMTP server is configured.
func runMail(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && isHelpFlag(args[0]) {
		printHelp(stdout, "mail", nil)
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "list" {
		return errors.New(`mail needs "list" ("sessiond mail -h" says more)`)
	}
	fs := newFlagSet("mail list", stdout)
	links := fs.Bool("links", false, "also print each mail's link, token included: for local development only, where no mail can be sent")
	cfg, err := parseConfig(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	msgs, err := db.PendingMail(ctx, mailListLimit)
	if err != nil {
		return fmt.Errorf("list pending mail: %w", err)
	}
	site := mail.Site{Product: cfg.ProductName, PublicURL: cfg.PublicBaseURL()}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	header := "TO\tKIND\tCREATED\tATTEMPTS\tLAST STATUS"
	if *links {
		header += "\tLINK"
	}
	fmt.Fprintln(tw, header)
	for _, m := range msgs {
		kind, link := "?", ""
		if msg, err := mail.Decode(m.Payload); err == nil {
			kind, link = string(msg.Kind), site.Link(msg)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%d\t%s", m.Target, kind, m.CreatedAt.UTC().Format(time.RFC3339), m.Attempts, m.LastStatus)
		if *links {
			line += "\t" + link
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
