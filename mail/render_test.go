package mail_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	smail "github.com/sessiond/sessiond/mail"
)

// TestRender renders every kind and checks what each must say.
func TestRender(t *testing.T) {
	exp := testNow.Add(30 * time.Minute)
	tests := []struct {
		name    string
		msg     smail.Message
		subject string
		link    string
		want    []string // in both bodies
		notWant []string
	}{
		{"verify", smail.VerifyEmail("a@example.org", "t1", exp), "Confirm your email address for Acme ID",
			"https://auth.example.com/account/verify#token=t1", []string{"a@example.org", "14:30 UTC"}, nil},
		{"reset", smail.ResetPassword("a@example.org", "t2", exp), "Reset your Acme ID password",
			"https://auth.example.com/account/reset#token=t2", []string{"14:30 UTC", "signs you out everywhere"}, nil},
		{"password changed", smail.PasswordChanged("a@example.org", testNow), "Your Acme ID password was changed",
			"https://auth.example.com/account/forgot", []string{"1 December 2026, 14:00 UTC"}, []string{"#token"}},
		{"email changed", smail.EmailChanged("old@example.org", "new@example.org", testNow), "Your Acme ID email address is being changed",
			"https://auth.example.com/account/forgot", []string{"old@example.org", "new@example.org", "14:00 UTC"}, []string{"#token"}},
		{"email changed, new address withheld", smail.EmailChanged("old@example.org", "", time.Time{}), "Your Acme ID email address is being changed",
			"https://auth.example.com/account/forgot", []string{"old@example.org"}, []string{"to new", ", on "}},
		{"account exists", smail.AccountExists("a@example.org", "", time.Time{}), "You already have an account with Acme ID",
			"https://auth.example.com/account/forgot", nil, []string{"#token", "works once"}},
		{"account exists with a reset token", smail.AccountExists("a@example.org", "t3", exp), "You already have an account with Acme ID",
			"https://auth.example.com/account/reset#token=t3", []string{"works once", "14:30 UTC"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := testSite.Render(tt.msg)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if r.Subject != tt.subject {
				t.Errorf("subject %q, want %q", r.Subject, tt.subject)
			}
			if !strings.Contains(r.Text, "\n"+tt.link+"\n") {
				t.Errorf("text lacks the link %s on a line of its own:\n%s", tt.link, r.Text)
			}
			if !strings.Contains(r.HTML, `href="`+tt.link+`"`) {
				t.Errorf("HTML lacks a link to %s:\n%s", tt.link, r.HTML)
			}
			for _, w := range tt.want {
				html := strings.ReplaceAll(w, "\n", " ")
				if !strings.Contains(r.Text, w) || !strings.Contains(r.HTML, html) {
					t.Errorf("a body lacks %q:\n%s\n%s", w, r.Text, r.HTML)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(r.Text, w) {
					t.Errorf("text has %q:\n%s", w, r.Text)
				}
			}
			for i, line := range strings.Split(r.Text, "\n") {
				if len(line) > 78 && !strings.HasPrefix(line, "https://") {
					t.Errorf("text line %d is %d long: %q", i+1, len(line), line)
				}
			}
		})
	}
}

// TestRenderEscapes: what comes from outside is text in the HTML, and a
// token cannot leave the fragment.
func TestRenderEscapes(t *testing.T) {
	site := smail.Site{Product: `<b>Acme</b> & "Co"`, PublicURL: "https://auth.example.com"}
	r, err := site.Render(smail.VerifyEmail(`o'brien&co@example.org`, "a b&c#d", testNow.Add(time.Hour)))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	for _, bad := range []string{"<b>Acme", "brien&co"} {
		if strings.Contains(r.HTML, bad) {
			t.Errorf("HTML holds %q unescaped", bad)
		}
	}
	if !strings.Contains(r.Text, "#token=a+b%26c%23d\n") {
		t.Errorf("token not escaped in the link:\n%s", r.Text)
	}
}

func TestRenderDefaultsProduct(t *testing.T) {
	r, err := smail.Site{PublicURL: "http://localhost:8080"}.Render(smail.ResetPassword("a@example.org", "t", testNow))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if r.Subject != "Reset your sessiond password" || !strings.Contains(r.Text, "http://localhost:8080/account/reset#token=t") {
		t.Errorf("got %q\n%s", r.Subject, r.Text)
	}
}

// TestPayload: the outbox row carries a small JSON document that Decode
// reads back, and messages that could not be rendered are refused when
// the row is made, not when it is sent.
func TestPayload(t *testing.T) {
	m := smail.EmailChanged("old@example.org", "new@example.org", testNow)
	row, err := smail.NewOutboxMessage(m, "ev1", testNow)
	if err != nil {
		t.Fatalf("NewOutboxMessage: %v", err)
	}
	if row.Channel != sessiond.ChannelMail || row.Target != "old@example.org" || row.EventID != "ev1" || !row.CreatedAt.Equal(testNow) || row.ID == "" {
		t.Errorf("row %+v", row)
	}
	var doc map[string]any
	if err := json.Unmarshal(row.Payload, &doc); err != nil || doc["kind"] != "email_changed" || doc["to"] != "old@example.org" {
		t.Errorf("payload %s (%v)", row.Payload, err)
	}
	got, err := smail.Decode(row.Payload)
	if err != nil || got.Kind != m.Kind || got.To != m.To || got.NewEmail != m.NewEmail || !got.At.Equal(m.At) {
		t.Errorf("Decode = %+v, %v; want %+v", got, err, m)
	}
	if !row.ExpiresAt.IsZero() {
		t.Errorf("a notice's row expires at %v, want never", row.ExpiresAt)
	}
	exp := testNow.Add(time.Hour)
	if tokRow, err := smail.NewOutboxMessage(smail.ResetPassword("a@example.org", "t", exp), "ev2", testNow); err != nil {
		t.Errorf("NewOutboxMessage of a reset mail: %v", err)
	} else if !tokRow.ExpiresAt.Equal(exp) {
		t.Errorf("a reset mail's row: got expiry %v, want its token's, %v", tokRow.ExpiresAt, exp)
	}
	if v := smail.VerifyEmail("a@example.org", "t", exp); v.Expired(exp.Add(-time.Second)) || !v.Expired(exp) {
		t.Errorf("Expired around %v wrong", exp)
	}
	if smail.PasswordChanged("a@example.org", testNow).Expired(testNow.Add(1000 * time.Hour)) {
		t.Errorf("a notice without token expired")
	}
	for _, bad := range []smail.Message{
		{Kind: "spam", To: "a@example.org"},
		{Kind: smail.KindVerifyEmail, To: "a@example.org"},
		{Kind: smail.KindResetPassword, To: "a@example.org", Token: "t"},
		smail.PasswordChanged("", testNow),
		smail.PasswordChanged("Alice <a@example.org>", testNow),
		smail.PasswordChanged("a@example.org, b@example.org", testNow),
	} {
		if _, err := smail.NewOutboxMessage(bad, "ev", testNow); err == nil {
			t.Errorf("NewOutboxMessage(%+v): no error", bad)
		}
	}
}
