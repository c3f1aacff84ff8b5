package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func getenvFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestServeStartsAndShutsDown runs the real program: it serves on a free
// port, answers, and returns cleanly when its context ends. pprof and
// /metrics are on the admin listener only: the API listener answers 404.
func TestServeStartsAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{
		"SESSIOND_ADDR":         "127.0.0.1:0",
		"SESSIOND_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "s.db"),
		"SESSIOND_ADMIN_ADDR":   "127.0.0.1:0",
	}
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenvFrom(env), stdoutW, io.Discard); stdoutW.Close() }()

	lines := bufio.NewReader(stdoutR)
	adminLine, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("no admin line: %v", err)
	}
	admin := strings.TrimSpace(strings.TrimPrefix(adminLine, "sessiond admin (pprof, metrics) on "))
	line, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "sessiond listening on "))
	go io.Copy(io.Discard, stdoutR)
	for _, path := range []string{"/healthz", "/readyz", "/.well-known/jwks.json"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: got %d, want 200", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/debug/pprof/", "/metrics"} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("admin GET %s: got %d, want 200", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/debug/pprof/", "/metrics"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s on the API listener: got %d, want 404", path, resp.StatusCode)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v, want nil after shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

// TestBadConfiguration: a bad setting stops the start with one line naming it.
func TestBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"not a number", map[string]string{"SESSIOND_MAX_SESSIONS": "five"}, nil, "SESSIOND_MAX_SESSIONS"},
		{"zero sessions", map[string]string{"SESSIOND_MAX_SESSIONS": "0"}, nil, "SESSIOND_MAX_SESSIONS"},
		{"bad duration", map[string]string{"SESSIOND_ACCESS_TTL": "15 minutes"}, nil, "SESSIOND_ACCESS_TTL"},
		{"bad bool", map[string]string{"SESSIOND_ROTATE_REFRESH": "maybe"}, nil, "SESSIOND_ROTATE_REFRESH"},
		{"bad database", map[string]string{"SESSIOND_DATABASE_URL": "mysql://x"}, nil, "SESSIOND_DATABASE_URL"},
		{"empty sqlite path", map[string]string{"SESSIOND_DATABASE_URL": "sqlite:"}, nil, "SESSIOND_DATABASE_URL"},
		{"password minimum", map[string]string{"SESSIOND_PASSWORD_MIN_LENGTH": "4"}, nil, "SESSIOND_PASSWORD_MIN_LENGTH"},
		{"negative grace", nil, []string{"-reuse-grace", "-1s"}, "SESSIOND_REUSE_GRACE"},
		{"idle shorter than access", map[string]string{"SESSIOND_IDLE_TTL": "5m", "SESSIOND_ACCESS_TTL": "15m"}, nil,
			"SESSIOND_IDLE_TTL (-idle-ttl): 5m0s is shorter than SESSIOND_ACCESS_TTL (-access-ttl) 15m0s"},
		{"bad addr", map[string]string{"SESSIOND_ADDR": "8080"}, nil, "SESSIOND_ADDR"},
		{"account ceiling below the pair limit", map[string]string{"SESSIOND_LOGIN_MAX_ACCOUNT_FAILURES": "5"}, nil, "SESSIOND_LOGIN_MAX_ACCOUNT_FAILURES"},
		{"no signups", nil, []string{"-signup-rate", "0"}, "SESSIOND_SIGNUP_RATE"},
		{"flag parse", nil, []string{"-max-sessions", "x"}, "max-sessions"},
		{"smtp scheme", map[string]string{"SESSIOND_SMTP_URL": "ftp://relay:secret@mail.example.com"}, nil, "SESSIOND_SMTP_URL"},
		{"smtp without scheme", map[string]string{"SESSIOND_SMTP_URL": "mail.example.com:587"}, nil, "SESSIOND_SMTP_URL"},
		{"mail from", map[string]string{"SESSIOND_MAIL_FROM": "not an address"}, nil, "SESSIOND_MAIL_FROM"},
		{"reset ttl", map[string]string{"SESSIOND_RESET_TTL": "10s"}, nil, "SESSIOND_RESET_TTL"},
		{"verify ttl", nil, []string{"-verify-ttl", "0s"}, "SESSIOND_VERIFY_TTL"},
		{"dpop mode", map[string]string{"SESSIOND_DPOP": "always"}, nil, `SESSIOND_DPOP (-dpop): "always" is not optional, required or off`},
		{"dpop mode by flag", nil, []string{"-dpop", "Required"}, "SESSIOND_DPOP"},
		{"dpop nonce", map[string]string{"SESSIOND_DPOP_NONCE": "sometimes"}, nil, "SESSIOND_DPOP_NONCE"},
		{"unknown command", nil, []string{"frobnicate"}, "frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, getenvFrom(tt.env), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error repeats a password: %q", err)
			}
		})
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	cfg, err := parseConfig(newFlagSet("serve", io.Discard), []string{"-max-sessions", "7"},
		getenvFrom(map[string]string{"SESSIOND_MAX_SESSIONS": "3", "SESSIOND_IDLE_TTL": "2h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.MaxSessions != 7 || cfg.Policy.IdleTTL != 2*time.Hour {
		t.Fatalf("got max %d idle %v, want 7 and 2h", cfg.Policy.MaxSessions, cfg.Policy.IdleTTL)
	}
	if cfg.Issuer != "http://127.0.0.1:8080" {
		t.Fatalf("default issuer: got %q", cfg.Issuer)
	}
}

func TestMigrateCommand(t *testing.T) {
	var out bytes.Buffer
	env := getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "m.db")})
	for range 2 { // idempotent
		if err := run(context.Background(), []string{"migrate"}, env, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Fatalf("got %q", out.String())
	}
	var help bytes.Buffer
	if err := run(context.Background(), []string{"help"}, env, &help, io.Discard); err != nil || !strings.Contains(help.String(), "migrate") {
		t.Fatalf("help: got %v %q", err, help.String())
	}
}
