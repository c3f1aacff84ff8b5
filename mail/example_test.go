package mail_test

import (
	"fmt"
	"strings"
	"time"

	smail "github.com/sessiond/sessiond/mail"
)

func ExampleParseSMTPURL() {
	cfg, err := smail.ParseSMTPURL("smtp://relay%40example.com:s3cret@mail.example.com")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Host, cfg.Port, cfg.Username, cfg.ImplicitTLS)
	fmt.Println(cfg) // the password stays out of logs

	_, err = smail.ParseSMTPURL("mail.example.com:587")
	fmt.Println(err)
	// Output:
	// mail.example.com 587 relay@example.com false
	// smtp://relay%40example.com@mail.example.com:587
	// SESSIOND_SMTP_URL: no smtp:// or smtps:// in front; want smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (implicit TLS)
}

func ExampleSite_Render() {
	site := smail.Site{Product: "Acme ID", PublicURL: "https://auth.example.com"}
	expires := time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)
	r, err := site.Render(smail.ResetPassword("alice@example.org", "tok123", expires))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Subject)
	for _, line := range strings.Split(r.Text, "\n") {
		if strings.HasPrefix(line, "https://") || strings.HasPrefix(line, "The link") {
			fmt.Println(line)
		}
	}
	// Output:
	// Reset your Acme ID password
	// https://auth.example.com/account/reset#token=tok123
	// The link works once, until 1 December 2026, 15:00 UTC.
}
