package password_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/password"
	"golang.org/x/crypto/bcrypt"
)

// fast keeps ordinary tests quick; the production cost is exercised by
// BenchmarkHash.
var fast = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func newHasher(t testing.TB) *password.Hasher {
	t.Helper()
	return password.NewHasher(fast, 0, time.Second)
}

func TestDefaultParamsAreOWASPMinimum(t *testing.T) {
	got := password.DefaultParams()
	want := password.Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
}

func TestHashVerifyRoundtrip(t *testing.T) {
	h := newHasher(t)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=64,t=1,p=1$"; !strings.HasPrefix(enc, want) {
		t.Fatalf("got %q, want prefix %q", enc, want)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"same password", "correct horse battery staple", true},
		{"wrong password", "correct horse battery stapler", false},
		{"empty password", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(ctx, tt.password, enc)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHashUsesFreshSalt(t *testing.T) {
	h := newHasher(t)
	a, _ := h.Hash(context.Background(), "same password twice")
	b, _ := h.Hash(context.Background(), "same password twice")
	if a == b {
		t.Fatalf("got equal hashes %q, want different salts", a)
	}
}

// The argon2id vector of the reference implementation's test suite
// (phc-winner-argon2, test.c): the encoding is the standard one, and the
// parameters are read from the string, not the Hasher's.
func TestVerifyReferenceVector(t *testing.T) {
	const enc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := newHasher(t)
	tests := []struct {
		password string
		want     bool
	}{
		{"password", true},
		{"Password", false},
	}
	for _, tt := range tests {
		got, err := h.Verify(context.Background(), tt.password, enc)
		if err != nil {
			t.Fatalf("%q: got error %v, want nil", tt.password, err)
		}
		if got != tt.want {
			t.Fatalf("%q: got %v, want %v", tt.password, got, tt.want)
		}
	}
}

func TestVerifyWithOtherParams(t *testing.T) {
	// Made with fast params; a Hasher at DefaultParams must still verify it.
	enc, err := newHasher(t).Hash(context.Background(), "password1234")
	if err != nil {
		t.Fatal(err)
	}
	h := password.NewHasher(password.DefaultParams(), 1, time.Second)
	ok, err := h.Verify(context.Background(), "password1234", enc)
	if err != nil || !ok {
		t.Fatalf("got %v, %v, want true, nil", ok, err)
	}
}

func TestNeedsRehash(t *testing.T) {
	h := newHasher(t)
	enc, err := h.Hash(context.Background(), "password1234")
	if err != nil {
		t.Fatal(err)
	}
	stronger := fast
	stronger.Iterations = 2
	longerKey := fast
	longerKey.KeyLength = 64
	tests := []struct {
		name    string
		hasher  *password.Hasher
		encoded string
		want    bool
	}{
		{"same params", h, enc, false},
		{"raised iterations", password.NewHasher(stronger, 1, time.Second), enc, true},
		{"longer key", password.NewHasher(longerKey, 1, time.Second), enc, true},
		{"default params", password.NewHasher(password.DefaultParams(), 1, time.Second), enc, true},
		{"lowered params keep the stronger hash", h, weakerRehash(t), false},
		{"bcrypt", h, "$2a$04$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", true},
		{"malformed", h, "$2a$10$abcdefghijklmnopqrstuv", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.hasher.NeedsRehash(tt.encoded); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyMalformedEncodings(t *testing.T) {
	h := newHasher(t)
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"bcrypt truncated", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lh"},
		{"bcrypt cost 31", "$2a$31$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"bcrypt unknown variant", "$2x$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"missing hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x"},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"missing param", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key},
		{"non-numeric param", "$argon2id$v=19$m=abc,t=1,p=1$" + salt + "$" + key},
		{"negative param", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"zero iterations", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero parallelism", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"parallelism over 255", "$argon2id$v=19$m=8192,t=1,p=256$" + salt + "$" + key},
		{"memory over 1 GiB", "$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key},
		{"memory overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"absurd iterations", "$argon2id$v=19$m=64,t=4000000000,p=1$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"bad base64 salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{"short hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$aGFzaA"},
		{"empty hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), "password1234", tt.encoded)
			if err == nil || ok {
				t.Fatalf("got %v, %v, want false and an error", ok, err)
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	for _, p := range []password.Params{fast, password.DefaultParams()} {
		if err := password.NewHasher(p, 1, time.Second).VerifyDummy(context.Background(), "whatever"); err != nil {
			t.Fatalf("params %+v: got %v, want nil", p, err)
		}
	}
}

func TestInvalidParamsError(t *testing.T) {
	bad := fast
	bad.Parallelism = 0
	h := password.NewHasher(bad, 1, time.Second)
	if _, err := h.Hash(context.Background(), "password1234"); err == nil {
		t.Fatalf("Hash: got nil, want error")
	}
	if err := h.VerifyDummy(context.Background(), "password1234"); err == nil {
		t.Fatalf("VerifyDummy: got nil, want error")
	}
}

func TestBusyIsUnavailable(t *testing.T) {
	h := password.NewHasher(fast, 1, 10*time.Millisecond)
	release := h.Occupy()
	defer release()
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"Hash", func() error { _, err := h.Hash(ctx, "password1234"); return err }},
		{"Verify", func() error {
			_, err := h.Verify(ctx, "password1234", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
			return err
		}},
		{"VerifyDummy", func() error { return h.VerifyDummy(ctx, "password1234") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var e *sessiond.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *sessiond.Error", err)
			}
			if e.Code != sessiond.CodeUnavailable {
				t.Fatalf("got code %q, want %q", e.Code, sessiond.CodeUnavailable)
			}
			if e.RetryAfter != time.Second {
				t.Fatalf("got RetryAfter %v, want %v", e.RetryAfter, time.Second)
			}
		})
	}
}

func TestSlotFreedAfterBusy(t *testing.T) {
	h := password.NewHasher(fast, 1, 10*time.Millisecond)
	release := h.Occupy()
	if _, err := h.Hash(context.Background(), "password1234"); sessiond.ErrorCode(err) != sessiond.CodeUnavailable {
		t.Fatalf("got %v, want %s", err, sessiond.CodeUnavailable)
	}
	release()
	if _, err := h.Hash(context.Background(), "password1234"); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
}

func TestWaitsForSlot(t *testing.T) {
	h := password.NewHasher(fast, 1, 5*time.Second)
	release := h.Occupy()
	time.AfterFunc(20*time.Millisecond, release)
	if _, err := h.Hash(context.Background(), "password1234"); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
}

func TestContextCancelEndsWait(t *testing.T) {
	h := password.NewHasher(fast, 1, time.Hour)
	release := h.Occupy()
	defer release()

	t.Run("canceled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		start := time.Now()
		_, err := h.Hash(ctx, "password1234")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("got wait %v, want the cancel to end it", d)
		}
	})
	t.Run("canceled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newHasher(t).Hash(ctx, "password1234")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
}

func BenchmarkHash(b *testing.B) {
	h := password.NewHasher(password.DefaultParams(), 0, time.Minute)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLoginsBeforeSignups fills the one slot, queues a signup (Hash) and
// then a login (Verify), and frees the slot: the login, though it came
// second, gets it, and the signup only after the login is done.
func TestLoginsBeforeSignups(t *testing.T) {
	h := password.NewHasher(fast, 1, time.Hour)
	release := h.Occupy()
	stored, err := password.NewHasher(fast, 1, time.Second).Hash(context.Background(), "password1234")
	if err != nil {
		t.Fatal(err)
	}
	waitFor := func(checks, hashes int) {
		t.Helper()
		for {
			c, n := h.Waiting()
			if c == checks && n == hashes {
				return
			}
			runtime.Gosched()
		}
	}
	done := make(chan string, 2)
	go func() {
		if _, err := h.Hash(context.Background(), "password1234"); err != nil {
			t.Errorf("signup: %v", err)
		}
		done <- "signup"
	}()
	waitFor(0, 1)
	go func() {
		if _, err := h.Verify(context.Background(), "password1234", stored); err != nil {
			t.Errorf("login: %v", err)
		}
		done <- "login"
	}()
	waitFor(1, 1)
	release()
	if first, second := <-done, <-done; first != "login" || second != "signup" {
		t.Fatalf("got %s first, then %s; want the login first", first, second)
	}
}

// weakerRehash is a hash made at stronger params than fast's.
func weakerRehash(t *testing.T) string {
	t.Helper()
	p := fast
	p.Memory, p.Iterations = 128, 2
	enc, err := password.NewHasher(p, 1, time.Second).Hash(context.Background(), "password1234")
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestVerifyBcrypt: hashes imported from bcrypt systems check out with
// their password, in all three prefixes, and count as a hash computed.
func TestVerifyBcrypt(t *testing.T) {
	h := newHasher(t)
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		raw, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), 4)
		if err != nil {
			t.Fatal(err)
		}
		enc := prefix + string(raw[4:])
		if err := password.CheckImported(enc); err != nil {
			t.Fatalf("%s: CheckImported: %v", prefix, err)
		}
		before := h.Computed()
		if ok, err := h.Verify(context.Background(), "correct horse battery", enc); !ok || err != nil {
			t.Errorf("%s right password: got %v, %v, want true, nil", prefix, ok, err)
		}
		if ok, err := h.Verify(context.Background(), "wrong horse battery", enc); ok || err != nil {
			t.Errorf("%s wrong password: got %v, %v, want false, nil", prefix, ok, err)
		}
		if got := h.Computed() - before; got != 2 {
			t.Errorf("%s: got %d hashes computed, want 2", prefix, got)
		}
	}
}

func TestCheckImported(t *testing.T) {
	argon, err := newHasher(t).Hash(context.Background(), "password1234")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, encoded string
		ok            bool
	}{
		{"argon2id", argon, true},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", true},
		{"bcrypt cost 15", "$2b$15$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", false},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
		{"md5 crypt", "$1$saltsalt$abcdefghijklmnopqrstuv", false},
		{"plaintext", "hunter2", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := password.CheckImported(tt.encoded); (err == nil) != tt.ok {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
