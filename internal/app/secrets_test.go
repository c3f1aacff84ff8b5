package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/password"
	"github.com/sessiond/sessiond/seal"
	"github.com/sessiond/sessiond/token"
)

// eachStore runs f once per database, as subtests named database=….
func eachStore(t *testing.T, f func(t *testing.T, url string)) {
	t.Run("database=sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db")) })
	t.Run("database=postgres", func(t *testing.T) { f(t, pgtest.URL(t)) })
}

func testConfig(url, key string) app.Config {
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = url
	cfg.Issuer = "https://sessiond.test"
	cfg.PasswordHash = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	cfg.EncryptionKey = key
	return cfg
}

// start runs app.New on a fresh connection to cfg's database, the way a
// process starts, and returns the App (nil on error), its error and its log.
func start(t *testing.T, cfg app.Config) (*app.App, error, string) {
	t.Helper()
	db, err := app.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var logs bytes.Buffer
	a, err := app.New(context.Background(), cfg, db, slog.New(slog.NewTextHandler(&logs, nil)), sessiond.SystemClock)
	return a, err, logs.String()
}

func mustStart(t *testing.T, cfg app.Config) (*app.App, string) {
	t.Helper()
	a, err, logs := start(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// plainSecrets returns what must not be in a dump: every unerased signing
// key's private part and the refresh-token MAC secret, as the App uses them.
func plainSecrets(t *testing.T, a *app.App) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	keys, err := a.Store.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !k.Erased() {
			out["private key "+k.ID] = k.PrivateKey
		}
	}
	for _, name := range []string{"refresh_token_mac", "login_throttle_mac"} {
		v, err := a.Store.EnsureSecret(context.Background(), name, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		out["secret "+name] = v
	}
	for what, v := range out {
		if len(v) != 32 {
			t.Fatalf("%s: %d bytes, want 32 (opened)", what, len(v))
		}
	}
	return out
}

// dump reads every stored secret row as the database holds it, through a
// store of its own that seals nothing.
func dump(t *testing.T, url string) map[string][]byte {
	t.Helper()
	db, err := app.OpenStore(context.Background(), testConfig(url, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string][]byte{}
	if _, err := db.ResealSecrets(context.Background(), func(s sessiond.StoredSecret) ([]byte, error) {
		out[s.Kind+"/"+s.Name] = bytes.Clone(s.Value)
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := db.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		out["signing_keys row "+k.ID] = bytes.Join([][]byte{[]byte(k.ID), k.PrivateKey, k.PublicKey}, nil)
	}
	return out
}

// tamper flips the last byte of the stored value named name.
func tamper(t *testing.T, url, name string) {
	t.Helper()
	db, err := app.OpenStore(context.Background(), testConfig(url, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := db.ResealSecrets(context.Background(), func(s sessiond.StoredSecret) ([]byte, error) {
		if s.Kind+"/"+s.Name != name {
			return nil, nil
		}
		v := bytes.Clone(s.Value)
		v[len(v)-1] ^= 1
		return v, nil
	})
	if err != nil || n != 1 {
		t.Fatalf("tamper %s: %d changed, %v", name, n, err)
	}
}

// TestDumpHoldsNoSecretsWithEncryptionKey: with SESSIOND_ENCRYPTION_KEY set,
// the rows of a database dump hold neither a signing key's private part nor
// the refresh-token MAC secret, only sealed values; and sessiond does not
// warn about secrets in the clear.
func TestDumpHoldsNoSecretsWithEncryptionKey(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		a, logs := mustStart(t, testConfig(url, seal.Generate()))
		if strings.Contains(logs, "in the clear") {
			t.Errorf("log warns about secrets in the clear with a key set:\n%s", logs)
		}
		secrets := plainSecrets(t, a)
		rows := dump(t, url)
		if len(rows) < 3 { // one key's row and its private part, the MAC secret
			t.Fatalf("dump: got %d rows, want the key and the MAC secret: %v", len(rows), rows)
		}
		for where, b := range rows {
			for what, s := range secrets {
				if bytes.Contains(b, s) {
					t.Errorf("%s holds the %s", where, what)
				}
			}
			if !strings.HasPrefix(where, "signing_keys row") && !seal.IsSealed(b) {
				t.Errorf("%s is not sealed: %x", where, b)
			}
		}
	})
}

// TestStartWithoutKeyWarns: without a key sessiond runs, and says at start
// that secrets are stored in the clear.
func TestStartWithoutKeyWarns(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		_, logs := mustStart(t, testConfig(url, ""))
		if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "secrets are stored in the clear") || !strings.Contains(logs, "SESSIOND_ENCRYPTION_KEY") {
			t.Errorf("log: got\n%s\nwant a WARN that secrets are stored in the clear, naming SESSIOND_ENCRYPTION_KEY", logs)
		}
	})
}

// TestEncryptedDatabaseRefusesToStart: a database whose secrets are sealed
// refuses to start without its key, with only wrong keys, and with a
// tampered value, each with one line naming SESSIOND_ENCRYPTION_KEY.
func TestEncryptedDatabaseRefusesToStart(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		key := seal.Generate()
		mustStart(t, testConfig(url, key))
		for _, tc := range []struct {
			name, key, want string
			tamper          string
		}{
			{"no key", "", "the database's secrets are encrypted", ""},
			{"wrong key", seal.Generate(), "none of the configured keys", ""},
			{"two wrong keys", seal.Generate() + "," + seal.Generate(), "none of the configured keys", ""},
			{"tampered MAC secret", key, "does not decrypt", "secret/refresh_token_mac"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.tamper != "" {
					tamper(t, url, tc.tamper)
				}
				a, err, _ := start(t, testConfig(url, tc.key))
				if err == nil || a != nil {
					t.Fatal("started, want a refusal")
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "SESSIOND_ENCRYPTION_KEY: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
					t.Errorf("error %q: want one line starting SESSIOND_ENCRYPTION_KEY: and saying %q", msg, tc.want)
				}
			})
		}
	})
}

// TestTamperedSigningKeyRefused: a signing key's sealed private part that
// was altered does not open, so no instance signs with a planted key.
func TestTamperedSigningKeyRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		key := seal.Generate()
		a, _ := mustStart(t, testConfig(url, key))
		tamper(t, url, "signing_key/"+a.Keys.CurrentKeyID())
		_, err, _ := start(t, testConfig(url, key))
		if err == nil || !strings.HasPrefix(err.Error(), "SESSIOND_ENCRYPTION_KEY: ") || !strings.Contains(err.Error(), "does not decrypt") {
			t.Fatalf("got %v, want a SESSIOND_ENCRYPTION_KEY refusal", err)
		}
	})
}

// TestEncryptionKeyRotation: a new key in front of the old one opens what
// the old one sealed; `secrets reencrypt` (ReencryptSecrets) re-seals
// everything under the new key, after which the new key alone starts and
// the old one alone is refused. The secrets themselves never change.
func TestEncryptionKeyRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		oldKey, newKey := seal.Generate(), seal.Generate()
		a, _ := mustStart(t, testConfig(url, oldKey))
		want := plainSecrets(t, a)

		both := testConfig(url, newKey+","+oldKey)
		a, _ = mustStart(t, both)
		n, err := app.ReencryptSecrets(context.Background(), a.Store, both)
		if err != nil || n != len(want) {
			t.Fatalf("reencrypt: got %d, %v; want %d values re-sealed", n, err, len(want))
		}
		newOnly, _ := seal.Parse(newKey)
		for where, b := range dump(t, url) {
			if !strings.HasPrefix(where, "signing_keys row") && !newOnly.SealedByNewest(b) {
				t.Errorf("%s is not sealed by the new key after reencrypt", where)
			}
		}
		if n, err := app.ReencryptSecrets(context.Background(), a.Store, both); err != nil || n != 0 {
			t.Errorf("second reencrypt: got %d, %v; want 0, nil", n, err)
		}

		a, _ = mustStart(t, testConfig(url, newKey))
		got := plainSecrets(t, a)
		for what, v := range want {
			if !bytes.Equal(got[what], v) {
				t.Errorf("%s changed over the key rotation", what)
			}
		}
		if _, err, _ := start(t, testConfig(url, oldKey)); err == nil || !strings.Contains(err.Error(), "SESSIOND_ENCRYPTION_KEY") {
			t.Errorf("old key alone after reencrypt: got %v, want a refusal", err)
		}
	})
}

// TestReencryptSealsClearDatabase: a database made without a key starts
// with a key set (warning that secrets are still in the clear), and
// ReencryptSecrets seals them all.
func TestReencryptSealsClearDatabase(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		a, _ := mustStart(t, testConfig(url, ""))
		want := plainSecrets(t, a)
		if _, err := app.ReencryptSecrets(context.Background(), a.Store, testConfig(url, "")); err == nil || !strings.Contains(err.Error(), "SESSIOND_ENCRYPTION_KEY is not set") {
			t.Errorf("reencrypt without a key: got %v, want it refused", err)
		}

		cfg := testConfig(url, seal.Generate())
		a, logs := mustStart(t, cfg)
		if !strings.Contains(logs, "still stored in the clear") || !strings.Contains(logs, "secrets reencrypt") {
			t.Errorf("log: got\n%s\nwant a warning to run secrets reencrypt", logs)
		}
		n, err := app.ReencryptSecrets(context.Background(), a.Store, cfg)
		if err != nil || n != len(want) {
			t.Fatalf("reencrypt: got %d, %v; want %d", n, err, len(want))
		}
		for where, b := range dump(t, url) {
			for what, s := range want {
				if bytes.Contains(b, s) {
					t.Errorf("%s holds the %s after reencrypt", where, what)
				}
			}
		}
		_, logs = mustStart(t, cfg)
		if strings.Contains(logs, "in the clear") {
			t.Errorf("log after reencrypt still warns:\n%s", logs)
		}
	})
}

// TestEncryptionKeySettings: the key comes from SESSIOND_ENCRYPTION_KEY or
// a file; a bad key or both settings stop the program with a line naming
// the setting, never quoting the key.
func TestEncryptionKeySettings(t *testing.T) {
	dir := t.TempDir()
	good := seal.Generate()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := "c2hvcnQ"
	for _, tc := range []struct {
		name, key, file, wantErr string
	}{
		{"none", "", "", ""},
		{"key", good, "", ""},
		{"file", "", file, ""},
		{"both", good, file, "SESSIOND_ENCRYPTION_KEY and SESSIOND_ENCRYPTION_KEY_FILE are both set"},
		{"short key", short, "", "SESSIOND_ENCRYPTION_KEY: key 1: 5 bytes"},
		{"missing file", "", filepath.Join(dir, "nope"), "SESSIOND_ENCRYPTION_KEY_FILE: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := app.DefaultConfig()
			cfg.Issuer = "https://sessiond.test"
			cfg.EncryptionKey, cfg.EncryptionKeyFile = tc.key, tc.file
			err := cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), good) || strings.Contains(err.Error(), short) {
				t.Errorf("error %q quotes the key", err)
			}
		})
	}
}

// TestRetiredKeyErasedOnLoad: once every token a retired key signed has
// expired, LoadKeys erases its private part, and the key leaves the JWKS.
func TestRetiredKeyErasedOnLoad(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		ctx := context.Background()
		cfg := testConfig(url, seal.Generate())
		db, err := app.OpenStore(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var mu sync.Mutex
		now := sessiond.SystemClock()
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		a, err := app.New(ctx, cfg, db, slog.New(slog.DiscardHandler), clock)
		if err != nil {
			t.Fatal(err)
		}
		old := a.Keys.CurrentKeyID()
		mu.Lock()
		now = now.Add(time.Millisecond) // so that ListKeys lists the new key first
		mu.Unlock()
		k, err := token.GenerateKey(clock())
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Store.RotateKey(ctx, k, clock()); err != nil {
			t.Fatal(err)
		}
		erased := func() []bool {
			t.Helper()
			if err := a.LoadKeys(ctx); err != nil {
				t.Fatal(err)
			}
			keys, err := a.Store.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []bool
			for _, k := range keys {
				out = append(out, k.Erased())
			}
			return out
		}
		if got := erased(); !slices.Equal(got, []bool{false, false}) {
			t.Fatalf("erased right after the rotation: got %v, want neither", got)
		}
		mu.Lock()
		now = now.Add(cfg.AccessTTL + sessiond.RetiredKeyMargin - time.Second)
		mu.Unlock()
		if got := erased(); !slices.Equal(got, []bool{false, false}) || !strings.Contains(string(a.Keys.JWKS()), old) {
			t.Fatalf("erased while its last tokens live: got %v, want neither, and the old key published", got)
		}
		mu.Lock()
		now = now.Add(time.Second)
		mu.Unlock()
		if got := erased(); !slices.Equal(got, []bool{false, true}) {
			t.Fatalf("erased after its tokens expired: got %v, want the old key only", got)
		}
		if strings.Contains(string(a.Keys.JWKS()), old) {
			t.Errorf("JWKS still has the erased key %s", old)
		}
	})
}
