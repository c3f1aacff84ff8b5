package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// TestNoPlaintextSecretsAtRestOrInLogs (invariant 5): after signup, login,
// refresh, reuse detection and logout, neither the database files nor the
// logs contain the password or any refresh token, in text or raw bytes.
func TestNoPlaintextSecretsAtRestOrInLogs(t *testing.T) {
	dir := t.TempDir()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "s.db")
	cfg.PasswordHash = fastHash
	var logs bytes.Buffer
	db, err := app.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, db, logger, func() time.Time { return sessiond.SystemClock() })
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, cfg: cfg, app: a, clock: &fakeClock{}}
	e.srv = httptest.NewServer(a.Handler)
	defer e.srv.Close()

	e.signup("secret@example.com")
	tok := e.login("secret@example.com")
	rt1 := e.refresh(tok.RT).want(t, 200, "").str("refresh_token")
	rt2 := e.refresh(rt1).want(t, 200, "").str("refresh_token")
	e.refresh(tok.RT).want(t, 401, "refresh_token_reused") // logged as theft
	e.call("POST", "/v1/login", map[string]string{"email": "secret@example.com", "password": "wrong password 1"}, "").want(t, 401, "invalid_credentials")
	if err := db.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}

	secrets := map[string][]byte{"password": []byte(testPassword), "wrong password": []byte("wrong password 1")}
	for i, rt := range []string{tok.RT, rt1, rt2} {
		raw, err := base64.RawURLEncoding.DecodeString(rt)
		if err != nil {
			t.Fatal(err)
		}
		secrets["refresh token "+string(rune('0'+i))] = []byte(rt)
		secrets["refresh token secret "+string(rune('0'+i))] = raw[len(raw)-32:]
	}
	files, _ := filepath.Glob(filepath.Join(dir, "s.db*"))
	stored := map[string][]byte{"logs": logs.Bytes()}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		stored[filepath.Base(f)] = b
	}
	if len(logs.Bytes()) == 0 || len(files) == 0 {
		t.Fatalf("nothing to inspect: %d log bytes, files %v", logs.Len(), files)
	}
	// The inspection sees real content: the email is stored in the clear.
	if !bytes.Contains(stored["s.db"], []byte("secret@example.com")) {
		t.Fatal("the database file does not even contain the email; the check reads the wrong thing")
	}
	for where, b := range stored {
		for what, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s contains the %s", where, what)
			}
		}
	}
}
