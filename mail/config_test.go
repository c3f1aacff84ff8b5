package mail_test

import (
	"strings"
	"testing"

	"github.com/sessiond/sessiond/mail"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		in       string
		want     mail.Config
		loopback bool
		err      string // a part of the error; "" for none
	}{
		{in: "smtp://user:pass@mail.example.com:587", want: mail.Config{Host: "mail.example.com", Port: 587, Username: "user", Password: "pass"}},
		{in: "smtp://mail.example.com", want: mail.Config{Host: "mail.example.com", Port: 587}},
		{in: "smtp://mail.example.com:25", want: mail.Config{Host: "mail.example.com", Port: 25}},
		{in: "smtps://user:pass@mail.example.com", want: mail.Config{Host: "mail.example.com", Port: 465, Username: "user", Password: "pass", ImplicitTLS: true}},
		{in: "smtps://mail.example.com:2465/", want: mail.Config{Host: "mail.example.com", Port: 2465, ImplicitTLS: true}},
		{in: "smtp://us%40er:p%3Ass%2Fw%40rd@mail.example.com", want: mail.Config{Host: "mail.example.com", Port: 587, Username: "us@er", Password: "p:ss/w@rd"}},
		{in: "smtp://localhost:25", want: mail.Config{Host: "localhost", Port: 25}, loopback: true},
		{in: "smtp://127.0.0.1:2525", want: mail.Config{Host: "127.0.0.1", Port: 2525}, loopback: true},
		{in: "smtp://[::1]", want: mail.Config{Host: "::1", Port: 587}, loopback: true},
		{in: "smtp://[2001:db8::1]:587", want: mail.Config{Host: "2001:db8::1", Port: 587}},
		{in: "", err: "no smtp:// or smtps://"},
		{in: "mail.example.com:587", err: "no smtp:// or smtps://"},
		{in: "://mail.example.com", err: "not a URL"},
		{in: "http://mail.example.com", err: `scheme "http"`},
		{in: "smtp:mail.example.com", err: "no smtp:// or smtps://"},
		{in: "smtp://", err: "no host"},
		{in: "smtp://user:pass@:587", err: "no host"},
		{in: "smtp://mail.example.com:0", err: "port out of range"},
		{in: "smtp://mail.example.com:65536", err: "port out of range"},
		{in: "smtp://mail.example.com:", err: "empty port"},
		{in: "smtp://mail.example.com?tls=off", err: "nothing may follow"},
		{in: "smtp://mail.example.com/relay", err: "nothing may follow"},
		{in: "smtp://user@mail.example.com", err: "user and password go together"},
		{in: "smtp://:pass@mail.example.com", err: "user and password go together"},
		{in: "smtp://user:s3cr%zzet@mail.example.com", err: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := mail.ParseSMTPURL(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("got %+v, want an error containing %q", got, tt.err)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.err) || !strings.HasPrefix(msg, "SESSIOND_SMTP_URL: ") || strings.Contains(msg, "\n") {
					t.Errorf("error %q: want one line naming SESSIOND_SMTP_URL and containing %q", msg, tt.err)
				}
				if !strings.Contains(msg, "smtp://user:pass@host:587") {
					t.Errorf("error %q does not say what is expected", msg)
				}
				if strings.Contains(msg, "s3cr") || strings.Contains(msg, "pass@mail") {
					t.Errorf("error %q repeats the URL's password", msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSMTPURL: %v", err)
			}
			if got.Host != tt.want.Host || got.Port != tt.want.Port || got.Username != tt.want.Username ||
				got.Password != tt.want.Password || got.ImplicitTLS != tt.want.ImplicitTLS {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Loopback() != tt.loopback {
				t.Errorf("Loopback() = %v, want %v", got.Loopback(), tt.loopback)
			}
			if s := got.String(); got.Password != "" && strings.Contains(s, got.Password) {
				t.Errorf("String() = %q shows the password", s)
			}
		})
	}
}

func TestDefaultFrom(t *testing.T) {
	tests := []struct{ publicURL, want string }{
		{"https://auth.example.com", `sessiond <no-reply@auth.example.com>`},
		{"https://auth.example.com:8443/base/", `sessiond <no-reply@auth.example.com>`},
		{"http://localhost:8080", `sessiond <no-reply@localhost>`},
		{"http://127.0.0.1:8080", `sessiond <no-reply@[127.0.0.1]>`},
		{"http://[::1]:8080", `sessiond <no-reply@[::1]>`},
	}
	for _, tt := range tests {
		got, err := mail.DefaultFrom(tt.publicURL)
		if err != nil || got != tt.want {
			t.Errorf("DefaultFrom(%q) = %q, %v; want %q", tt.publicURL, got, err, tt.want)
		}
		if _, err := mail.ParseFrom(got); err != nil {
			t.Errorf("ParseFrom(DefaultFrom(%q)): %v", tt.publicURL, err)
		}
	}
	for _, bad := range []string{"", "auth.example.com", "ftp://auth.example.com", "https://", "http://:8080"} {
		if _, err := mail.DefaultFrom(bad); err == nil || !strings.Contains(err.Error(), "SESSIOND_PUBLIC_URL") {
			t.Errorf("DefaultFrom(%q): got %v, want an error naming SESSIOND_PUBLIC_URL", bad, err)
		}
	}
}

func TestParseFrom(t *testing.T) {
	tests := []struct {
		in, name, addr string
		ok             bool
	}{
		{"no-reply@example.com", "", "no-reply@example.com", true},
		{"Example <no-reply@example.com>", "Example", "no-reply@example.com", true},
		{`"Example, Inc." <no-reply@example.com>`, "Example, Inc.", "no-reply@example.com", true},
		{"=?utf-8?q?Caf=C3=A9?= <no-reply@example.com>", "Café", "no-reply@example.com", true},
		{"", "", "", false},
		{"no-reply", "", "", false},
		{"a@example.com, b@example.com", "", "", false},
		{"Example <no-reply@example.com", "", "", false},
	}
	for _, tt := range tests {
		a, err := mail.ParseFrom(tt.in)
		if !tt.ok {
			if err == nil || !strings.Contains(err.Error(), "SESSIOND_MAIL_FROM") {
				t.Errorf("ParseFrom(%q): got %v, %v; want an error naming SESSIOND_MAIL_FROM", tt.in, a, err)
			}
			continue
		}
		if err != nil || a.Name != tt.name || a.Address != tt.addr {
			t.Errorf("ParseFrom(%q) = %v, %v; want %q <%s>", tt.in, a, err, tt.name, tt.addr)
		}
	}
}
