package mail_test

import (
	"context"
	"errors"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	smail "github.com/sessiond/sessiond/mail"
	"github.com/sessiond/sessiond/mail/mailtest"
	"github.com/sessiond/sessiond/outbox"
)

const (
	testToken  = "tok_Zm9vYmFyYmF6cXV1eA-_secret"
	remoteHost = "mail.example.test" // not loopback: STARTTLS is required
	waitMail   = 10 * time.Second
)

var (
	testSite = smail.Site{Product: "Acme ID", PublicURL: "https://auth.example.com/"}
	testNow  = time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)
)

func fixedClock() time.Time { return testNow }

// config is the Config a test's sender uses for srv under host: with the
// server's certificate trusted, and every name dialled to srv.
func config(t *testing.T, srv *mailtest.Server, host string) smail.Config {
	t.Helper()
	cfg, err := smail.ParseSMTPURL(srv.URL(host))
	if err != nil {
		t.Fatalf("ParseSMTPURL: %v", err)
	}
	cfg.RootCAs = srv.CertPool
	cfg.DialContext = srv.Dial
	return cfg
}

func newSender(t *testing.T, cfg smail.Config) *smail.Sender {
	t.Helper()
	s, err := smail.NewSender(cfg, smail.Options{Site: testSite, Clock: fixedClock})
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	return s
}

func outboxRow(t *testing.T, m smail.Message) sessiond.OutboxMessage {
	t.Helper()
	row, err := smail.NewOutboxMessage(m, sessiond.NewID(), testNow)
	if err != nil {
		t.Fatalf("NewOutboxMessage: %v", err)
	}
	return *row
}

func send(t *testing.T, s *smail.Sender, row sessiond.OutboxMessage) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return s.Send(ctx, row)
}

// outboxError is err as the outbox worker sees it.
func outboxError(t *testing.T, err error) *outbox.Error {
	t.Helper()
	var e *outbox.Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want an *outbox.Error", err, err)
	}
	if strings.Contains(e.Status, testToken) || strings.Contains(err.Error(), testToken) {
		t.Errorf("error %q holds the token", err)
	}
	return e
}

// TestSendDelivers sends through each kind of connection and reads the
// mail back as a mail client would.
func TestSendDelivers(t *testing.T) {
	tests := []struct {
		name    string
		opt     mailtest.Options
		host    string
		wantTLS bool
	}{
		{name: "plain loopback", opt: mailtest.Options{}, host: "127.0.0.1"},
		{name: "plain loopback with AUTH", opt: mailtest.Options{Username: "relay", Password: "p@ss:word"}, host: "127.0.0.1"},
		{name: "plain localhost with AUTH", opt: mailtest.Options{Username: "relay", Password: "pw"}, host: "localhost"},
		{name: "STARTTLS", opt: mailtest.Options{TLS: mailtest.StartTLS, Hosts: []string{remoteHost}}, host: remoteHost, wantTLS: true},
		{name: "STARTTLS with AUTH", opt: mailtest.Options{TLS: mailtest.StartTLS, Hosts: []string{remoteHost}, Username: "relay", Password: "p@ss:word"}, host: remoteHost, wantTLS: true},
		{name: "implicit TLS with AUTH", opt: mailtest.Options{TLS: mailtest.ImplicitTLS, Hosts: []string{remoteHost}, Username: "relay", Password: "pw"}, host: remoteHost, wantTLS: true},
		{name: "implicit TLS on loopback", opt: mailtest.Options{TLS: mailtest.ImplicitTLS}, host: "127.0.0.1", wantTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opt)
			row := outboxRow(t, smail.VerifyEmail("alice@example.org", testToken, testNow.Add(time.Hour)))
			if err := send(t, newSender(t, config(t, srv, tt.host)), row); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := srv.Next(t, waitMail)
			if got.TLS != tt.wantTLS {
				t.Errorf("TLS %v, want %v", got.TLS, tt.wantTLS)
			}
			if got.User != tt.opt.Username {
				t.Errorf("authenticated as %q, want %q", got.User, tt.opt.Username)
			}
			if got.From != "no-reply@auth.example.com" || len(got.To) != 1 || got.To[0] != "alice@example.org" {
				t.Errorf("envelope from %q to %v, want no-reply@auth.example.com to [alice@example.org]", got.From, got.To)
			}
			checkVerifyMail(t, got, row)
		})
	}
}

// checkVerifyMail parses a verification mail with the standard library's
// mail and multipart readers and checks its headers and both bodies.
func checkVerifyMail(t *testing.T, got mailtest.Message, row sessiond.OutboxMessage) {
	t.Helper()
	p, err := mailtest.Parse(got.Data)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, got.Data)
	}
	h := p.Header
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
		t.Errorf("Content-Type %q, want multipart/alternative", ct)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "sessiond" || from[0].Address != "no-reply@auth.example.com" {
		t.Errorf("From %v (%v), want sessiond <no-reply@auth.example.com>", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "alice@example.org" {
		t.Errorf("To %v (%v), want alice@example.org", to, err)
	}
	if s := h.Get("Subject"); s != "Confirm your email address for Acme ID" {
		t.Errorf("Subject %q", s)
	}
	if id, want := h.Get("Message-ID"), "<"+row.ID+"@auth.example.com>"; id != want {
		t.Errorf("Message-ID %q, want %q", id, want)
	}
	if d, err := h.Date(); err != nil || !d.Equal(testNow) {
		t.Errorf("Date %v (%v), want %v", d, err, testNow)
	}
	if a := h.Get("Auto-Submitted"); a != "auto-generated" {
		t.Errorf("Auto-Submitted %q, want auto-generated", a)
	}
	link := "https://auth.example.com/account/verify#token=" + testToken
	if !strings.Contains(p.Text, link) {
		t.Errorf("text part lacks %s:\n%s", link, p.Text)
	}
	if !strings.Contains(p.HTML, `href="`+link+`"`) {
		t.Errorf("HTML part lacks a link to %s:\n%s", link, p.HTML)
	}
	if tok := mailtest.Token(p.Text); tok != testToken {
		t.Errorf("mailtest.Token = %q, want %q", tok, testToken)
	}
	if !strings.Contains(p.Text, "1 December 2026, 15:00 UTC") {
		t.Errorf("text part does not say when the link expires:\n%s", p.Text)
	}
}

// TestSendRefusesCleartext: a server that is not on loopback and offers
// no STARTTLS gets neither the credentials nor the mail.
func TestSendRefusesCleartext(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{Username: "relay", Password: "pw"})
	err := send(t, newSender(t, config(t, srv, remoteHost)), outboxRow(t, smail.ResetPassword("bob@example.org", testToken, testNow.Add(time.Hour))))
	e := outboxError(t, err)
	if e.Status != "STARTTLS not offered" || e.Permanent {
		t.Errorf("got status %q (permanent %v), want STARTTLS not offered, retried", e.Status, e.Permanent)
	}
	if n := srv.AuthAttempts(); n != 0 {
		t.Errorf("%d AUTH attempts in the clear, want 0", n)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d mails accepted, want 0", n)
	}
}

// TestSendFailures: how each failure is reported to the outbox.
func TestSendFailures(t *testing.T) {
	reply := func(code int) func(string) error {
		return func(string) error { return mailtest.Reply(code, "refused") }
	}
	replyData := func(code int) func([]byte) error {
		return func([]byte) error { return mailtest.Reply(code, "refused") }
	}
	tests := []struct {
		name      string
		opt       mailtest.Options
		host      string
		untrusted bool // leave the server's certificate untrusted
		password  string
		status    string
		permanent bool
	}{
		{name: "451 to RCPT", opt: mailtest.Options{Rcpt: reply(451)}, host: "127.0.0.1", status: "SMTP 451"},
		{name: "550 to RCPT", opt: mailtest.Options{Rcpt: reply(550)}, host: "127.0.0.1", status: "SMTP 550", permanent: true},
		{name: "452 after DATA", opt: mailtest.Options{Data: replyData(452)}, host: "127.0.0.1", status: "SMTP 452"},
		{name: "554 after DATA", opt: mailtest.Options{Data: replyData(554)}, host: "127.0.0.1", status: "SMTP 554", permanent: true},
		{name: "553 to MAIL FROM", opt: mailtest.Options{Mail: reply(553)}, host: "127.0.0.1", status: "SMTP 553"},
		{name: "553 to RCPT over STARTTLS", opt: mailtest.Options{TLS: mailtest.StartTLS, Hosts: []string{remoteHost}, Rcpt: reply(553)}, host: remoteHost, status: "SMTP 553", permanent: true},
		{name: "wrong password", opt: mailtest.Options{TLS: mailtest.StartTLS, Hosts: []string{remoteHost}, Username: "relay", Password: "right"}, host: remoteHost, password: "wrong", status: "SMTP AUTH failed (535)"},
		{name: "untrusted certificate", opt: mailtest.Options{TLS: mailtest.StartTLS, Hosts: []string{remoteHost}}, host: remoteHost, untrusted: true, status: "TLS certificate refused"},
		{name: "certificate for another name", opt: mailtest.Options{TLS: mailtest.ImplicitTLS}, host: remoteHost, status: "TLS certificate refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mailtest.Start(t, tt.opt)
			cfg := config(t, srv, tt.host)
			if tt.untrusted {
				cfg.RootCAs = nil
			}
			if tt.password != "" {
				cfg.Password = tt.password
			}
			err := send(t, newSender(t, cfg), outboxRow(t, smail.ResetPassword("bob@example.org", testToken, testNow.Add(time.Hour))))
			e := outboxError(t, err)
			if e.Status != tt.status || e.Permanent != tt.permanent {
				t.Errorf("got status %q (permanent %v), want %q (permanent %v); error %v", e.Status, e.Permanent, tt.status, tt.permanent, err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d mails accepted, want 0", n)
			}
		})
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	s := newSender(t, smail.Config{Host: "127.0.0.1", Port: addr.Port})
	e := outboxError(t, send(t, s, outboxRow(t, smail.PasswordChanged("bob@example.org", testNow))))
	if e.Status != "connection refused" || e.Permanent {
		t.Errorf("got status %q (permanent %v), want connection refused, retried", e.Status, e.Permanent)
	}
}

// TestSendRespectsContext: a server that accepts the connection and then
// says nothing holds the send only until its context ends.
func TestSendRespectsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := newSender(t, smail.Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port})
	row := outboxRow(t, smail.PasswordChanged("bob@example.org", testNow))

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if e := outboxError(t, s.Send(ctx, row)); e.Status != "timeout" || e.Permanent {
		t.Errorf("deadline: got status %q (permanent %v), want timeout, retried", e.Status, e.Permanent)
	}

	ctx, cancel = context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, row) }()
	cancel()
	if e := outboxError(t, <-done); e.Status != "canceled" && e.Status != "timeout" {
		t.Errorf("canceled: got status %q, want canceled", e.Status)
	}
}

// TestSendWithoutConnecting: mails that cannot or need not be sent fail
// for good before any connection is made.
func TestSendWithoutConnecting(t *testing.T) {
	srv := mailtest.Start(t, mailtest.Options{})
	s := newSender(t, config(t, srv, "127.0.0.1"))
	expired := outboxRow(t, smail.VerifyEmail("alice@example.org", testToken, testNow))
	other := outboxRow(t, smail.PasswordChanged("alice@example.org", testNow))
	other.Target = "mallory@example.org"
	named := other
	named.Target = "Alice <alice@example.org>"
	named.Payload = []byte(`{"kind":"password_changed","to":"Alice <alice@example.org>"}`)
	tests := []struct {
		name   string
		row    sessiond.OutboxMessage
		status string
	}{
		{"token expired", expired, "token expired"},
		{"not JSON", sessiond.OutboxMessage{ID: "x", Channel: sessiond.ChannelMail, Target: "a@example.org", Payload: []byte("{")}, "bad payload"},
		{"unknown kind", sessiond.OutboxMessage{ID: "x", Channel: sessiond.ChannelMail, Target: "a@example.org", Payload: []byte(`{"kind":"spam","to":"a@example.org"}`)}, "bad payload"},
		{"target differs", other, "bad payload"},
		{"display name", named, "bad payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := outboxError(t, send(t, s, tt.row))
			if e.Status != tt.status || !e.Permanent {
				t.Errorf("got status %q (permanent %v), want %q, permanent", e.Status, e.Permanent, tt.status)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d mails accepted, want 0", n)
	}
}

func TestNewSenderChecksOptions(t *testing.T) {
	cfg := smail.Config{Host: "127.0.0.1", Port: 25}
	tests := []struct {
		name string
		cfg  smail.Config
		opt  smail.Options
		want string
	}{
		{"no host", smail.Config{}, smail.Options{Site: testSite}, "SESSIOND_SMTP_URL"},
		{"no public URL", cfg, smail.Options{}, "SESSIOND_PUBLIC_URL"},
		{"bad From", cfg, smail.Options{Site: testSite, From: "nobody"}, "SESSIOND_MAIL_FROM"},
		{"product with newline", cfg, smail.Options{Site: smail.Site{Product: "A\nBcc: x@y", PublicURL: "https://a.example"}}, "control character"},
	}
	for _, tt := range tests {
		if _, err := smail.NewSender(tt.cfg, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	s, err := smail.NewSender(cfg, smail.Options{Site: testSite, From: "Acme <id@acme.example>", Clock: fixedClock})
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	_ = s
	if _, err := mail.ParseAddress("Acme <id@acme.example>"); err != nil {
		t.Fatal(err)
	}
}

// TestSendBoundsConnections: with every connection slot held by a send to
// a server that does not answer, another send waits, and gives up when
// its context ends, without connecting.
func TestSendBoundsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	s, err := smail.NewSender(smail.Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port},
		smail.Options{Site: testSite, Clock: fixedClock, MaxConns: 1})
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	row := outboxRow(t, smail.PasswordChanged("bob@example.org", testNow))

	first, cancelFirst := context.WithCancel(t.Context())
	firstDone := make(chan error, 1)
	go func() { firstDone <- s.Send(first, row) }()
	c := <-accepted
	defer c.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if e := outboxError(t, s.Send(ctx, row)); e.Status != "too many mails in flight" {
		t.Errorf("second send: got status %q, want too many mails in flight", e.Status)
	}
	select {
	case c := <-accepted:
		c.Close()
		t.Errorf("the second send connected")
	default:
	}
	cancelFirst()
	if e := outboxError(t, <-firstDone); e.Status != "canceled" {
		t.Errorf("first send: got status %q, want canceled", e.Status)
	}
}
