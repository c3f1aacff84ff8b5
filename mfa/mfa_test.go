package mfa_test

import (
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sessiond/sessiond/mfa"
)

// TestVerifyWindow: a code of now or one step either side is accepted with
// its step; two steps away is wrong; a step at or before the last used one
// is a replay.
func TestVerifyWindow(t *testing.T) {
	k, err := mfa.NewKey("sessiond", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Secret) != mfa.SecretSize || len(k.QR) == 0 || !strings.Contains(k.URL, "secret="+k.Text) {
		t.Fatalf("key: got %d-byte secret, %d-byte QR, URL %q", len(k.Secret), len(k.QR), k.URL)
	}
	if got := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(k.Secret); got != k.Text {
		t.Fatalf("text: got %q, want %q", k.Text, got)
	}
	now := time.Unix(1_700_000_015, 0)
	step := mfa.Step(now)
	code := func(d time.Duration) string {
		c, err := totp.GenerateCode(k.Text, now.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		name     string
		code     string
		last     int64
		want     mfa.Verdict
		wantStep int64
	}{
		{"now", code(0), 0, mfa.Accepted, step},
		{"spaced", code(0)[:3] + " " + code(0)[3:], 0, mfa.Accepted, step},
		{"one step back", code(-30 * time.Second), 0, mfa.Accepted, step - 1},
		{"one step ahead", code(30 * time.Second), 0, mfa.Accepted, step + 1},
		{"two steps back", code(-60 * time.Second), 0, mfa.Wrong, 0},
		{"two steps ahead", code(60 * time.Second), 0, mfa.Wrong, 0},
		{"replay", code(0), step, mfa.Replayed, 0},
		{"older than last", code(-30 * time.Second), step, mfa.Replayed, 0},
		{"after last", code(30 * time.Second), step, mfa.Accepted, step + 1},
		{"short", "12345", 0, mfa.Wrong, 0},
		{"letters", "12345a", 0, mfa.Wrong, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, v := mfa.Verify(k.Secret, c.code, now, c.last)
			if v != c.want || got != c.wantStep {
				t.Fatalf("got step %d, verdict %v; want %d, %v", got, v, c.wantStep, c.want)
			}
		})
	}
}

// TestRecoveryCodes: ten distinct codes of 80 bits, normalized however
// typed, hashed per user, matched among a set.
func TestRecoveryCodes(t *testing.T) {
	codes := mfa.NewRecoveryCodes()
	if len(codes) != mfa.RecoveryCodes {
		t.Fatalf("got %d codes, want %d", len(codes), mfa.RecoveryCodes)
	}
	seen := map[string]bool{}
	var hashes [][]byte
	for _, c := range codes {
		n, ok := mfa.NormalizeRecoveryCode(c)
		if !ok || len(n) != 16 || seen[n] {
			t.Fatalf("code %q: normalized %q, %v (or a duplicate)", c, n, ok)
		}
		seen[n] = true
		hashes = append(hashes, mfa.HashRecoveryCode("u1", n))
	}
	n, ok := mfa.NormalizeRecoveryCode(" " + strings.ToUpper(strings.ReplaceAll(codes[3], "-", " ")) + " ")
	if !ok {
		t.Fatal("an upper-case, spaced code does not normalize")
	}
	if i := mfa.MatchRecoveryCode(hashes, mfa.HashRecoveryCode("u1", n)); i != 3 {
		t.Fatalf("match: got %d, want 3", i)
	}
	if i := mfa.MatchRecoveryCode(hashes, mfa.HashRecoveryCode("u2", n)); i != -1 {
		t.Fatalf("another user's hash: got %d, want -1", i)
	}
	for _, bad := range []string{"", "abcd", "abcd-efgh-ijkl-mno1", "abcd-efgh-ijkl-mnop-q"} {
		if _, ok := mfa.NormalizeRecoveryCode(bad); ok {
			t.Errorf("%q: normalized, want refused", bad)
		}
	}
}
