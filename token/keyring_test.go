package token_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/token"
)

// RFC 8037 §A.3 computes the thumbprint of its example key.
func TestThumbprintRFC8037(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	got := token.Thumbprint(ed25519.PublicKey(x))
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestGenerateKey(t *testing.T) {
	k := mustKey(t, t0)
	if got, want := k.ID, token.Thumbprint(k.PublicKey); got != want {
		t.Errorf("got kid %q, want thumbprint %q", got, want)
	}
	if k.Algorithm != "EdDSA" {
		t.Errorf("got algorithm %q, want EdDSA", k.Algorithm)
	}
	if got := ed25519.NewKeyFromSeed(k.PrivateKey).Public().(ed25519.PublicKey); !got.Equal(ed25519.PublicKey(k.PublicKey)) {
		t.Errorf("got public key %x from seed, want %x", got, k.PublicKey)
	}
	if !k.CreatedAt.Equal(t0) || !k.Current() {
		t.Errorf("got created %v, current %v, want %v, true", k.CreatedAt, k.Current(), t0)
	}
	if other := mustKey(t, t0); other.ID == k.ID {
		t.Errorf("got the same kid twice: %q", k.ID)
	}
}

func TestKeyringBeforeSet(t *testing.T) {
	keys := token.NewKeyring(testTTL)
	if got := keys.CurrentKeyID(); got != "" {
		t.Errorf("got CurrentKeyID %q, want empty", got)
	}
	if got, want := string(keys.JWKS()), `{"keys":[]}`; got != want {
		t.Errorf("got JWKS %s, want %s", got, want)
	}
	if _, _, err := token.NewIssuer(keys, testIssuer, testAudience, testTTL).Sign(testUser, testSession, t0, sessionEnd); err == nil {
		t.Errorf("got nil error from Sign, want one")
	}
}

// jwksKids returns the kids of a JWKS document, in order.
func jwksKids(t *testing.T, doc []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	kids := []string{}
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func TestKeyringRetention(t *testing.T) {
	current := mustKey(t, t0)
	margin := token.RetiredKeyMargin
	tests := []struct {
		name      string
		retiredAt time.Time
		kept      bool
	}{
		{"just retired", t0, true},
		{"retired one TTL ago", t0.Add(-testTTL), true},
		{"inside the margin", t0.Add(-testTTL - margin + time.Second), true},
		{"at the end of the margin", t0.Add(-testTTL - margin), false},
		{"long retired", t0.Add(-24 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := mustKey(t, t0.Add(-48*time.Hour))
			old.RetiredAt = tt.retiredAt
			keys := token.NewKeyring(testTTL)
			if err := keys.Set([]sessiond.SigningKey{*current, *old}, t0); err != nil {
				t.Fatal(err)
			}
			want := []string{current.ID}
			if tt.kept {
				want = append(want, old.ID)
			}
			got := jwksKids(t, keys.JWKS())
			if len(got) != len(want) || got[0] != want[0] || (len(got) > 1 && got[1] != want[1]) {
				t.Fatalf("got kids %q, want %q", got, want)
			}
			if got := keys.CurrentKeyID(); got != current.ID {
				t.Fatalf("got current %q, want %q", got, current.ID)
			}
		})
	}
}

func TestKeyringRotation(t *testing.T) {
	f := newFixture(t)
	oldToken := f.sign(t)
	oldKey := *f.key

	// Rotate at t0: the old key retires, a new one signs.
	next := mustKey(t, t0)
	oldKey.RetiredAt = t0
	oldKey.PrivateKey = nil // a store may drop a retired key's private half
	if err := f.keys.Set([]sessiond.SigningKey{*next, oldKey}, t0); err != nil {
		t.Fatal(err)
	}
	if got := f.keys.CurrentKeyID(); got != next.ID {
		t.Fatalf("got current %q, want %q", got, next.ID)
	}
	if got, want := jwksKids(t, f.keys.JWKS()), []string{next.ID, oldKey.ID}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got JWKS kids %q, want %q", got, want)
	}
	if _, err := f.verifier.Verify(oldToken); err != nil {
		t.Fatalf("old token after rotation: got %v, want nil", err)
	}
	newToken := f.sign(t)
	c, err := f.verifier.Verify(newToken)
	if err != nil {
		t.Fatalf("new token: got %v, want nil", err)
	}
	if c.Subject != testUser {
		t.Fatalf("got sub %q, want %q", c.Subject, testUser)
	}
	if kid := headerKid(t, newToken); kid != next.ID {
		t.Fatalf("got kid %q on a new token, want %q", kid, next.ID)
	}

	// Once every token the old key signed has expired, it is dropped.
	later := t0.Add(testTTL + token.RetiredKeyMargin + time.Second)
	if err := f.keys.Set([]sessiond.SigningKey{*next, oldKey}, later); err != nil {
		t.Fatal(err)
	}
	if got := jwksKids(t, f.keys.JWKS()); len(got) != 1 || got[0] != next.ID {
		t.Fatalf("got JWKS kids %q, want [%q]", got, next.ID)
	}
	f.now = t0 // judge the old token as if still fresh: only the key is missing
	_, err = f.verifier.Verify(oldToken)
	if e := wantCode(t, err, sessiond.CodeInvalidToken); e.Message != "unknown key id" {
		t.Fatalf("got message %q, want %q", e.Message, "unknown key id")
	}
}

func headerKid(t *testing.T, tok string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
	}
	seg, _, _ := bytes.Cut([]byte(tok), []byte("."))
	b, err := base64.RawURLEncoding.DecodeString(string(seg))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func TestKeyringSetErrors(t *testing.T) {
	good := mustKey(t, t0)
	tests := []struct {
		name string
		keys func() []sessiond.SigningKey
	}{
		{"no keys", func() []sessiond.SigningKey { return nil }},
		{"only retired keys", func() []sessiond.SigningKey {
			k := *mustKey(t, t0)
			k.RetiredAt = t0
			return []sessiond.SigningKey{k}
		}},
		{"wrong algorithm", func() []sessiond.SigningKey {
			k := *mustKey(t, t0)
			k.Algorithm = "RS256"
			return []sessiond.SigningKey{k}
		}},
		{"short public key", func() []sessiond.SigningKey {
			k := *mustKey(t, t0)
			k.PublicKey = k.PublicKey[:31]
			return []sessiond.SigningKey{k}
		}},
		{"current key without private key", func() []sessiond.SigningKey {
			k := *mustKey(t, t0)
			k.PrivateKey = nil
			return []sessiond.SigningKey{k}
		}},
		{"mismatched pair", func() []sessiond.SigningKey {
			k := *mustKey(t, t0)
			k.PublicKey = mustKey(t, t0).PublicKey
			return []sessiond.SigningKey{k}
		}},
		{"duplicate kid", func() []sessiond.SigningKey {
			k, old := *mustKey(t, t0), *mustKey(t, t0)
			old.ID, old.RetiredAt = k.ID, t0
			return []sessiond.SigningKey{k, old}
		}},
		{"empty kid", func() []sessiond.SigningKey {
			k := *mustKey(t, t0)
			k.ID = ""
			return []sessiond.SigningKey{k}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := token.NewKeyring(testTTL)
			if err := keys.Set([]sessiond.SigningKey{*good}, t0); err != nil {
				t.Fatal(err)
			}
			if err := keys.Set(tt.keys(), t0); err == nil {
				t.Fatalf("got nil error, want one")
			}
			if got := keys.CurrentKeyID(); got != good.ID {
				t.Fatalf("after a failed Set: got current %q, want %q kept", got, good.ID)
			}
		})
	}
}

func TestKeyringTwoCurrentKeys(t *testing.T) {
	older, newer := mustKey(t, t0.Add(-time.Hour)), mustKey(t, t0)
	keys := token.NewKeyring(testTTL)
	if err := keys.Set([]sessiond.SigningKey{*older, *newer}, t0); err != nil {
		t.Fatal(err)
	}
	if got := keys.CurrentKeyID(); got != newer.ID {
		t.Fatalf("got current %q, want the newest %q", got, newer.ID)
	}
	if got := jwksKids(t, keys.JWKS()); len(got) != 2 || got[0] != newer.ID {
		t.Fatalf("got JWKS kids %q, want %q first and both published", got, newer.ID)
	}
}

// TestKeyringPublishesBeforeSigning: a key rotated in with a future
// activation is in the JWKS and verifies at once, but signs only from its
// activation; the key it replaces signs until then.
func TestKeyringPublishesBeforeSigning(t *testing.T) {
	old := mustKey(t, t0)
	next := mustKey(t, t0.Add(time.Hour))
	next.ActivatesAt = t0.Add(time.Hour + sessiond.KeyActivationDelay)
	old.RetiredAt = next.ActivatesAt
	keys := token.NewKeyring(testTTL)
	for _, tc := range []struct {
		name     string
		at       time.Time
		wantKids []string // signing key first
	}{
		{"pending", t0.Add(time.Hour), []string{old.ID, next.ID}},
		{"activated", next.ActivatesAt, []string{next.ID, old.ID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := keys.Set([]sessiond.SigningKey{*next, *old}, tc.at); err != nil {
				t.Fatal(err)
			}
			if got := jwksKids(t, keys.JWKS()); len(got) != 2 || got[0] != tc.wantKids[0] || got[1] != tc.wantKids[1] {
				t.Errorf("JWKS kids: got %v, want %v", got, tc.wantKids)
			}
			if got := keys.CurrentKeyID(); got != tc.wantKids[0] {
				t.Errorf("signing key: got %s, want %s", got, tc.wantKids[0])
			}
		})
	}
	// An erased key is still published while its tokens live, and needs no
	// private part for that.
	old.PrivateKey = nil
	if err := keys.Set([]sessiond.SigningKey{*next, *old}, next.ActivatesAt); err != nil {
		t.Fatalf("Set with an erased retired key: %v", err)
	}
}
