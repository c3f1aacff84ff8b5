package mail_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	smail "github.com/sessiond/sessiond/mail"
	"github.com/sessiond/sessiond/mail/mailtest"
	"github.com/sessiond/sessiond/outbox"
	"github.com/sessiond/sessiond/sqlite"
)

// TestWorkerDeliversMail runs the pieces together as serve will: a mail's
// outbox row in the store, the outbox worker with this package's Sender,
// and an SMTP server that receives the mail.
func TestWorkerDeliversMail(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sessiond.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	srv := mailtest.Start(t, mailtest.Options{TLS: mailtest.StartTLS, Hosts: []string{remoteHost}, Username: "relay", Password: "pw"})
	sender, err := smail.NewSender(config(t, srv, remoteHost), smail.Options{Site: testSite})
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}

	now := sessiond.SystemClock()
	e := sessiond.Event{ID: sessiond.NewID(), Type: sessiond.EventPasswordResetRequested, OccurredAt: now, UserID: "u"}
	if err := db.InsertEvent(t.Context(), &e); err != nil {
		t.Fatalf("InsertEvent: %v", err)
	}
	row, err := smail.NewOutboxMessage(smail.ResetPassword("carol@example.org", testToken, now.Add(time.Hour)), e.ID, now)
	if err != nil {
		t.Fatalf("NewOutboxMessage: %v", err)
	}
	if err := db.InsertOutbox(t.Context(), row); err != nil {
		t.Fatalf("InsertOutbox: %v", err)
	}

	w := outbox.New(db, map[string]outbox.Sender{sessiond.ChannelMail: sender}, outbox.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	got := srv.Next(t, 30*time.Second)
	p, err := mailtest.Parse(got.Data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if tok := mailtest.Token(p.Text); tok != testToken {
		t.Errorf("token in the mail %q, want %q", tok, testToken)
	}
	if got.To[0] != "carol@example.org" || !got.TLS || got.User != "relay" {
		t.Errorf("received %+v", got)
	}
}
