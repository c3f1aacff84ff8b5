package seal_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/seal"
)

func mustParse(t *testing.T, s string) *seal.Keyring {
	t.Helper()
	k, err := seal.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustParse(t, seal.Generate())
	plain := []byte("0123456789abcdef0123456789abcdef")
	sealed := k.Seal("secret/x", plain)
	if !seal.IsSealed(sealed) || bytes.Contains(sealed, plain) {
		t.Fatalf("sealed value %x: not sealed, or holds the plaintext", sealed)
	}
	if again := k.Seal("secret/x", plain); bytes.Equal(again, sealed) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	got, wasSealed, err := k.Open("secret/x", sealed)
	if err != nil || !wasSealed || !bytes.Equal(got, plain) {
		t.Fatalf("open: got %x, %v, %v; want the plaintext, true, nil", got, wasSealed, err)
	}
}

// TestOpenRefuses: whatever is wrong with a sealed value, Open refuses it
// with an *seal.Error naming SESSIOND_ENCRYPTION_KEY, never garbage.
func TestOpenRefuses(t *testing.T) {
	right := mustParse(t, seal.Generate())
	sealed := right.Seal("signing_key/k1", []byte("0123456789abcdef0123456789abcdef"))
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	for _, tc := range []struct {
		name    string
		keys    *seal.Keyring
		context string
		value   []byte
		want    string
	}{
		{"no key", nil, "signing_key/k1", sealed, "set SESSIOND_ENCRYPTION_KEY"},
		{"wrong key", mustParse(t, seal.Generate()), "signing_key/k1", sealed, "none of the configured keys"},
		{"tampered ciphertext", right, "signing_key/k1", flip(len(sealed) - 20), "does not decrypt"},
		{"tampered tag", right, "signing_key/k1", flip(len(sealed) - 1), "does not decrypt"},
		{"tampered nonce", right, "signing_key/k1", flip(len(seal.Prefix) + 8), "does not decrypt"},
		{"tampered key id", right, "signing_key/k1", flip(len(seal.Prefix)), "none of the configured keys"},
		{"moved to another row", right, "signing_key/k2", sealed, "does not decrypt"},
		{"moved to another kind", right, "secret/k1", sealed, "does not decrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := tc.keys.Open(tc.context, tc.value)
			var se *seal.Error
			if !errors.As(err, &se) || got != nil {
				t.Fatalf("got %x, %v; want a *seal.Error", got, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "SESSIOND_ENCRYPTION_KEY: ") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want one line starting SESSIOND_ENCRYPTION_KEY: and saying %q", msg, tc.want)
			}
		})
	}
}

// TestKeyRotation: with "new,old" the old key's values open and new values
// are sealed by the new key; the old key alone cannot open them.
func TestKeyRotation(t *testing.T) {
	oldKey, newKey := seal.Generate(), seal.Generate()
	old := mustParse(t, oldKey)
	both := mustParse(t, newKey+","+oldKey)
	byOld := old.Seal("secret/x", []byte("value"))
	if got, _, err := both.Open("secret/x", byOld); err != nil || string(got) != "value" {
		t.Fatalf("old value with both keys: got %q, %v", got, err)
	}
	if both.SealedByNewest(byOld) {
		t.Error("a value sealed by the old key counts as sealed by the newest")
	}
	byNew := both.Seal("secret/x", []byte("value"))
	if !both.SealedByNewest(byNew) {
		t.Error("a value sealed by the newest key does not count as such")
	}
	if _, _, err := old.Open("secret/x", byNew); err == nil {
		t.Error("the old key alone opens a value sealed by the new key")
	}
}

func TestClearValuesPassThrough(t *testing.T) {
	plain := []byte("0123456789abcdef0123456789abcdef")
	var none *seal.Keyring
	if got := none.Seal("secret/x", plain); !bytes.Equal(got, plain) {
		t.Errorf("seal without a key: got %x, want the value as is", got)
	}
	for _, k := range []*seal.Keyring{none, mustParse(t, seal.Generate())} {
		got, sealed, err := k.Open("secret/x", plain)
		if err != nil || sealed || !bytes.Equal(got, plain) {
			t.Errorf("open clear value with %d keys: got %x, %v, %v", k.Len(), got, sealed, err)
		}
	}
}

// TestParse: keys are 32 bytes of base64url, newest first; an error never
// repeats key material.
func TestParse(t *testing.T) {
	short := base64.RawURLEncoding.EncodeToString([]byte("sixteen byte key"))
	std := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
	good := seal.Generate()
	for _, tc := range []struct {
		name, in string
		wantLen  int
		wantErr  string
	}{
		{"empty", "", 0, ""},
		{"one", good, 1, ""},
		{"two with spaces", seal.Generate() + " , " + good, 2, ""},
		{"standard base64 with padding", std, 1, ""},
		{"short key", short, 0, "key 1: 16 bytes"},
		{"not base64", "not a key!", 0, "key 1: not base64url"},
		{"stray comma", good + ",", 0, "key 2: empty"},
		{"listed twice", good + "," + good, 0, "key 2: the same key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := seal.Parse(tc.in)
			if tc.wantErr == "" {
				if err != nil || k.Len() != tc.wantLen {
					t.Fatalf("got %d keys, %v; want %d keys", k.Len(), err, tc.wantLen)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), good) {
				t.Errorf("error %q repeats key material", err)
			}
		})
	}
}
