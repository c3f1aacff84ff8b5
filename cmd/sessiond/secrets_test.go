package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/seal"
)

// TestNoPlaintextSecretsAtRestOrInLogs (invariant 5): after signup, login,
// refresh, reuse detection and logout, neither the database files nor the
// logs contain the password or any refresh token, in text or raw bytes;
// with SESSIOND_ENCRYPTION_KEY set, nor the signing key's private part or
// the refresh-token MAC secret.
func TestNoPlaintextSecretsAtRestOrInLogs(t *testing.T) {
	t.Run("encryption=off", func(t *testing.T) { testNoPlaintextSecrets(t, "") })
	t.Run("encryption=on", func(t *testing.T) { testNoPlaintextSecrets(t, seal.Generate()) })
}

func testNoPlaintextSecrets(t *testing.T, encryptionKey string) {
	dir := t.TempDir()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(dir, "s.db")
	cfg.PasswordHash = fastHash
	cfg.EncryptionKey = encryptionKey
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
	keys, err := a.Store.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := a.Store.EnsureSecret(context.Background(), "refresh_token_mac", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
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
	if encryptionKey != "" {
		secrets["refresh token MAC secret"] = mac
		for _, k := range keys {
			secrets["private key "+k.ID] = k.PrivateKey
		}
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

// TestSecretsReencryptCommand: `sessiond secrets reencrypt` seals the
// secrets of a database made without a key, a TOTP secret among them;
// `serve` then refuses to start without the key, with one line naming
// SESSIOND_ENCRYPTION_KEY, and keys rotated in with the key set are sealed
// too. After a rotation to a new key, TOTP logins still finish. On PostgreSQL, where serve
// waits out an unreachable database, the refusal comes at once: a missing
// key is not an outage to wait for.
func TestSecretsReencryptCommand(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		url := dbURL(t)
		testSecretsReencryptCommand(t, url)
	})
}

func testSecretsReencryptCommand(t *testing.T, url string) {
	keyless := newTestEnv(t, url, nil) // creates the signing key and the MAC secrets in the clear
	keyless.signup("clear@example.com")
	clearSecret, _ := keyless.enrolTOTP(keyless.login("clear@example.com").AT)
	keyless.srv.Close()
	key := seal.Generate()
	ctx := context.Background()
	withKey := getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": url, "SESSIOND_ENCRYPTION_KEY": key})
	withoutKey := getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": url, "SESSIOND_ADDR": "127.0.0.1:0",
		"SESSIOND_PUBLIC_URL": "https://sessiond.test", "SESSIOND_START_TIMEOUT": "1m"})

	if err := run(ctx, []string{"secrets", "reencrypt"}, withoutKey, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "SESSIOND_ENCRYPTION_KEY is not set") {
		t.Fatalf("reencrypt without a key: got %v, want a refusal naming SESSIOND_ENCRYPTION_KEY", err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"secrets", "reencrypt"}, withKey, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "re-encrypted 4 secrets") {
		t.Errorf("reencrypt printed %q, want 4 secrets (the signing key, the refresh and throttle MAC secrets, the TOTP secret)", out.String())
	}
	if err := run(ctx, []string{"keys", "rotate", "-activate-after", "0"}, withKey, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"secrets", "reencrypt"}, withKey, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "re-encrypted 0 secrets") {
		t.Errorf("reencrypt after a rotation with the key: got %q, %v; want nothing left to seal", out.String(), err)
	}

	// Well inside SESSIOND_START_TIMEOUT: a retry loop would run into it.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := run(sctx, nil, withoutKey, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SESSIOND_ENCRYPTION_KEY: ") || strings.Contains(err.Error(), "\n") || sctx.Err() != nil {
		t.Fatalf("serve without the key: got %v (context: %v), want at once one line naming SESSIOND_ENCRYPTION_KEY", err, sctx.Err())
	}

	testTOTPAcrossKeyRotation(t, url, key, map[string]string{"clear@example.com": clearSecret})
}

// testTOTPAcrossKeyRotation: a TOTP secret enrolled under key A (the
// database's key) is resealed by `secrets reencrypt` with NEW,A, so that
// after a restart with NEW alone its user, and those of enrolled (email to
// secret, sealed under A already), still finish an MFA login with a code
// of the secret shown at enrolment.
func testTOTPAcrossKeyRotation(t *testing.T, url, keyA string, enrolled map[string]string) {
	ctx := context.Background()
	e := newTestEnv(t, url, func(c *app.Config) { c.EncryptionKey = keyA })
	e.signup("totp@example.com")
	enrolled["totp@example.com"], _ = e.enrolTOTP(e.login("totp@example.com").AT)
	e.srv.Close() // the instance stops before the key goes

	keyB := seal.Generate()
	env := func(key string) func(string) string {
		return getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": url, "SESSIOND_ENCRYPTION_KEY": key})
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"secrets", "reencrypt"}, env(keyB+","+keyA), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Every value under A is rewritten: the signing keys, the two MAC
	// secrets and the TOTP secrets.
	if n, want := reencrypted(t, out.String()), 4+len(enrolled); n < want {
		t.Errorf("reencrypt to NEW: %d secrets, want every one, at least %d (signing keys, MAC secrets, TOTP secrets)", n, want)
	}
	// With NEW alone every stored value opens, and none is left to seal.
	out.Reset()
	if err := run(ctx, []string{"secrets", "reencrypt"}, env(keyB), &out, io.Discard); err != nil || reencrypted(t, out.String()) != 0 {
		t.Fatalf("reencrypt with NEW alone: got %q, %v; want every value open and sealed by NEW already", out.String(), err)
	}

	// e's clock is a step past the latest enrolment: no code is a replay.
	restarted := newTestEnvWith(t, withEncryptionKey(e.cfg, keyB), nil, e.clock)
	for email, secret := range enrolled {
		tok := restarted.mfaToken(email)
		r := restarted.loginMFA(tok, map[string]string{"code": restarted.totpCode(secret, 0)}).want(t, 200, "")
		restarted.call("GET", "/v1/me", nil, r.str("access_token")).want(t, 200, "")
	}
}

func withEncryptionKey(cfg app.Config, key string) app.Config {
	cfg.EncryptionKey = key
	return cfg
}

// reencrypted is the count `secrets reencrypt` printed in out.
func reencrypted(t *testing.T, out string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(out, "re-encrypted %d secrets", &n); err != nil {
		t.Fatalf("reencrypt printed %q: %v", out, err)
	}
	return n
}
