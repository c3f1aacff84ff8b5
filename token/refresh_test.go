package token_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/token"
)

var serverSecret = bytes.Repeat([]byte{0x5e}, 32)

func newRefresher(t testing.TB) *token.Refresher {
	t.Helper()
	r, err := token.NewRefresher(serverSecret)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func attempt(t testing.TB, r *token.Refresher, tok string) (*sessiond.RefreshAttempt, string) {
	t.Helper()
	a, next, err := r.Attempt(tok)
	if err != nil {
		t.Fatalf("Attempt(%q): got %v, want nil", tok, err)
	}
	return a, next
}

func TestNewRefresherSecretLength(t *testing.T) {
	tests := []struct {
		n  int
		ok bool
	}{{0, false}, {31, false}, {32, true}, {64, true}}
	for _, tt := range tests {
		_, err := token.NewRefresher(make([]byte, tt.n))
		if (err == nil) != tt.ok {
			t.Errorf("%d bytes: got %v, want ok %v", tt.n, err, tt.ok)
		}
	}
}

func TestMintAttemptRoundtrip(t *testing.T) {
	r := newRefresher(t)
	id := sessiond.NewID()
	tok, hash, err := r.Mint(id)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 75 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("got token %q, want 75 base64url characters", tok)
	}
	a, _ := attempt(t, r, tok)
	if a.SessionID != id || a.Generation != 0 {
		t.Fatalf("got session %q generation %d, want %q 0", a.SessionID, a.Generation, id)
	}
	if !bytes.Equal(a.Hash, hash) {
		t.Fatalf("got hash %x, want Mint's %x", a.Hash, hash)
	}
	if bytes.Equal(a.NextHash, a.Hash) || len(a.NextHash) != sha256.Size {
		t.Fatalf("got next hash %x, want a different SHA-256", a.NextHash)
	}
	if tok2, _, _ := r.Mint(id); tok2 == tok {
		t.Fatalf("got the same token twice, want a fresh secret per Mint")
	}
}

func TestMintRefusesNonCanonicalID(t *testing.T) {
	r := newRefresher(t)
	for _, id := range []string{"", "not-a-uuid", strings.ToUpper(sessiond.NewID()), "7f9e8d7c6b5a49388271605f4e3d2c1b", "{7f9e8d7c-6b5a-4938-8271-605f4e3d2c1b}"} {
		if _, _, err := r.Mint(id); err == nil {
			t.Errorf("Mint(%q): got nil error, want one", id)
		}
	}
}

// chain mints a token and rotates it n times, returning every generation.
func chain(t *testing.T, r *token.Refresher, n int) []string {
	t.Helper()
	tok, _, err := r.Mint(sessiond.NewID())
	if err != nil {
		t.Fatal(err)
	}
	toks := []string{tok}
	for range n {
		_, next := attempt(t, r, toks[len(toks)-1])
		toks = append(toks, next)
	}
	return toks
}

func TestRotationChain(t *testing.T) {
	r := newRefresher(t)
	toks := chain(t, r, 5)
	for i := 0; i+1 < len(toks); i++ {
		a, next := attempt(t, r, toks[i])
		b, _ := attempt(t, r, next)
		if b.Generation != uint64(i+1) || b.SessionID != a.SessionID {
			t.Fatalf("gen %d: got next generation %d session %q, want %d %q", i, b.Generation, b.SessionID, i+1, a.SessionID)
		}
		if !bytes.Equal(b.Hash, a.NextHash) {
			t.Fatalf("gen %d: got next token's hash %x, want NextHash %x", i, b.Hash, a.NextHash)
		}
		// Two tabs presenting the same token converge on one successor.
		if _, again := attempt(t, r, toks[i]); again != next {
			t.Fatalf("gen %d: got successor %q then %q, want the same", i, next, again)
		}
	}
}

func TestIsAncestor(t *testing.T) {
	r := newRefresher(t)
	toks := chain(t, r, 4)
	hashOf := func(i int) []byte { a, _ := attempt(t, r, toks[i]); return a.Hash }
	first, _ := attempt(t, r, toks[0])
	otherChain := chain(t, r, 4)
	foreign, _ := attempt(t, r, otherChain[0])
	otherSecret, err := token.NewRefresher(bytes.Repeat([]byte{0x77}, 32))
	if err != nil {
		t.Fatal(err)
	}
	underOtherSecret, _ := attempt(t, otherSecret, toks[0])
	tests := []struct {
		name  string
		a     *sessiond.RefreshAttempt
		steps uint64
		hash  []byte
		want  bool
	}{
		{"zero steps is itself", first, 0, hashOf(0), true},
		{"one step", first, 1, hashOf(1), true},
		{"four steps", first, 4, hashOf(4), true},
		{"from the middle", attempt1(t, r, toks[2]), 2, hashOf(4), true},
		{"wrong step count", first, 3, hashOf(4), false},
		{"descendant is no ancestor", attempt1(t, r, toks[4]), 1, hashOf(3), false},
		{"another session's chain", foreign, 4, hashOf(4), false},
		{"another server secret", underOtherSecret, 4, hashOf(4), false},
		{"empty hash", first, 0, nil, false},
		{"steps past the bound", first, 1<<16 + 1, hashOf(4), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.IsAncestor(tt.steps, tt.hash); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func attempt1(t *testing.T, r *token.Refresher, tok string) *sessiond.RefreshAttempt {
	t.Helper()
	a, _ := attempt(t, r, tok)
	return a
}

// TestClassifyWithRealTokens runs the root package's rule on attempts made
// by Attempt, as a store would: the pieces fit.
func TestClassifyWithRealTokens(t *testing.T) {
	r := newRefresher(t)
	p := sessiond.DefaultPolicy()
	toks := chain(t, r, 3)
	g0, g1, g2, g3 := attempt1(t, r, toks[0]), attempt1(t, r, toks[1]), attempt1(t, r, toks[2]), attempt1(t, r, toks[3])
	// The store is at generation 3, rotated at t0.
	s := &sessiond.Session{
		ID: g3.SessionID, RefreshHash: g3.Hash, PrevHash: g2.Hash, Generation: 3, RotatedAt: t0,
		CreatedAt: t0.Add(-time.Hour), LastUsedAt: t0, ExpiresAt: t0.Add(p.SessionTTL),
	}
	forged := forgeRT(g3.SessionID, 3)
	tests := []struct {
		name string
		a    *sessiond.RefreshAttempt
		now  time.Time
		want sessiond.RefreshVerdict
	}{
		{"current", g3, t0, sessiond.RefreshCurrent},
		{"superseded inside grace", g2, t0.Add(time.Second), sessiond.RefreshGrace},
		{"superseded after grace", g2, t0.Add(time.Minute), sessiond.RefreshReused},
		{"two generations old", g1, t0, sessiond.RefreshReused},
		{"three generations old", g0, t0, sessiond.RefreshReused},
		{"forged token naming the session", attempt1(t, r, forged), t0, sessiond.RefreshInvalid},
		{"forged old generation", attempt1(t, r, forgeRT(g3.SessionID, 1)), t0, sessiond.RefreshInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sessiond.ClassifyRefresh(s, tt.a, tt.now, p); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// forgeRT builds a well-formed token for a session with an all-zero secret.
func forgeRT(sessionID string, gen uint64) string {
	id, err := hex.DecodeString(strings.ReplaceAll(sessionID, "-", ""))
	if err != nil || len(id) != 16 {
		panic("forgeRT: bad session id " + sessionID)
	}
	raw := make([]byte, 56)
	copy(raw, id)
	binary.BigEndian.PutUint64(raw[16:], gen)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestAttemptMalformed(t *testing.T) {
	r := newRefresher(t)
	good, _, err := r.Mint(sessiond.NewID())
	if err != nil {
		t.Fatal(err)
	}
	maxGen := forgeRT(sessiond.NewID(), ^uint64(0))
	// The last character carries 2 bits beyond the 56 bytes; setting one
	// makes a second spelling of the same bytes, which must be refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	lastBits := []byte(good)
	lastBits[74] = alphabet[strings.IndexByte(alphabet, good[74])|1]
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"short", good[:74]},
		{"long", good + "A"},
		{"padded", good + "="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good[:74]) + "+"},
		{"invalid character", good[:10] + "!" + good[11:]},
		{"whitespace", " " + good[1:]},
		{"oversized", strings.Repeat("A", 300)},
		{"huge", strings.Repeat("A", 1<<20)},
		{"stray low bits", string(lastBits)},
		{"generation at the maximum", maxGen},
		{"a JWT", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, next, err := r.Attempt(tt.token)
			if a != nil || next != "" {
				t.Fatalf("got %+v, %q, want nil, empty", a, next)
			}
			wantCode(t, err, sessiond.CodeInvalidRefreshToken)
		})
	}
}

func BenchmarkMint(b *testing.B) {
	r := newRefresher(b)
	id := sessiond.NewID()
	for b.Loop() {
		if _, _, err := r.Mint(id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAttempt(b *testing.B) {
	r := newRefresher(b)
	tok, _, err := r.Mint(sessiond.NewID())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := r.Attempt(tok); err != nil {
			b.Fatal(err)
		}
	}
}
