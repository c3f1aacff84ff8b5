package argon2

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	upstream "golang.org/x/crypto/argon2"
)

// params are cost parameters from the smallest argon2 allows to sessiond's
// default, with several lanes and key lengths, in an order that makes one
// Memory grow, shrink and grow again.
var params = []struct {
	time, memory uint32
	threads      uint8
	keyLen       uint32
}{
	{1, 8, 1, 16},
	{2, 64, 1, 32},
	{3, 256, 4, 64},
	{2, 19456, 1, 32}, // sessiond's default
	{1, 1024, 2, 100},
	{4, 37, 1, 32}, // not a multiple of 4 lanes x sync points: argon2 rounds it down
	{2, 4096, 8, 32},
	{2, 19456, 1, 32},
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestMatchesUpstream: every key equals golang.org/x/crypto/argon2's, from
// the package function and from one reused Memory, whose leftovers from the
// previous call (another size, other inputs) must not show.
func TestMatchesUpstream(t *testing.T) {
	var m Memory
	for round := range 2 {
		for _, p := range params {
			name := fmt.Sprintf("round%d/t=%d,m=%d,p=%d,len=%d", round, p.time, p.memory, p.threads, p.keyLen)
			t.Run(name, func(t *testing.T) {
				pw, salt := random(t, 1+len(name)), random(t, 16)
				want := upstream.IDKey(pw, salt, p.time, p.memory, p.threads, p.keyLen)
				if got := m.IDKey(pw, salt, p.time, p.memory, p.threads, p.keyLen); !bytes.Equal(got, want) {
					t.Fatalf("Memory.IDKey = %x, upstream %x", got, want)
				}
				if got := IDKey(pw, salt, p.time, p.memory, p.threads, p.keyLen); !bytes.Equal(got, want) {
					t.Fatalf("IDKey = %x, upstream %x", got, want)
				}
				if got, want := Key(pw, salt, p.time, p.memory, p.threads, p.keyLen), upstream.Key(pw, salt, p.time, p.memory, p.threads, p.keyLen); !bytes.Equal(got, want) {
					t.Fatalf("Key = %x, upstream %x", got, want)
				}
			})
		}
	}
}

// TestKnownAnswers pins outputs, so that this package and upstream cannot
// both drift the same way: RFC 9106's argon2id test vector (section 5.3,
// with a secret and associated data) and x/crypto's own argon2id vectors,
// all through one reused Memory.
func TestKnownAnswers(t *testing.T) {
	var m Memory
	rfc := deriveKey(&m, argon2id, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16),
		bytes.Repeat([]byte{3}, 8), bytes.Repeat([]byte{4}, 12), 3, 32, 4, 32)
	if got, want := hex.EncodeToString(rfc), "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"; got != want {
		t.Errorf("RFC 9106 argon2id vector: got %s, want %s", got, want)
	}
	for _, v := range []struct {
		time, memory uint32
		threads      uint8
		want         string
	}{
		{1, 64, 1, "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
		{2, 64, 1, "068d62b26455936aa6ebe60060b0a65870dbfa3ddf8d41f7"},
		{2, 64, 2, "350ac37222f436ccb5c0972f1ebd3bf6b958bf2071841362"},
	} {
		got := m.IDKey([]byte("password"), []byte("somesalt"), v.time, v.memory, v.threads, uint32(len(v.want)/2))
		if hex.EncodeToString(got) != v.want {
			t.Errorf("IDKey(password, somesalt, t=%d, m=%d, p=%d) = %x, want %s", v.time, v.memory, v.threads, got, v.want)
		}
	}
}

// TestMemoryKeepsNothing: between calls a Memory holds only zeros, nothing
// derived from the last password.
func TestMemoryKeepsNothing(t *testing.T) {
	var m Memory
	m.IDKey([]byte("correct horse battery staple"), random(t, 16), 2, 1024, 2, 32)
	if m.Size() != 1024*1024 {
		t.Fatalf("Size = %d after a 1024 KiB hash", m.Size())
	}
	for i, b := range m.b[:cap(m.b)] {
		if b != (block{}) {
			t.Fatalf("block %d is not zero after the call", i)
		}
	}
	m.Release()
	if m.Size() != 0 {
		t.Fatalf("Size = %d after Release", m.Size())
	}
}

// TestMemoryIsReused: hashing again in the same Memory allocates next to
// nothing, where upstream allocates the whole cost parameter every call.
func TestMemoryIsReused(t *testing.T) {
	const n, kib = 5, 19456
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			f()
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	pw, salt := []byte("correct horse battery staple"), random(t, 16)
	var m Memory
	m.IDKey(pw, salt, 1, kib, 1, 32) // the one allocation
	reused := allocated(func() { m.IDKey(pw, salt, 1, kib, 1, 32) })
	fresh := allocated(func() { upstream.IDKey(pw, salt, 1, kib, 1, 32) })
	t.Logf("%d hashes at %d KiB: %d bytes allocated reusing a Memory, %d upstream", n, kib, reused, fresh)
	if reused > 1<<20 {
		t.Errorf("reusing a Memory allocated %d bytes for %d hashes, want under 1 MiB", reused, n)
	}
	if fresh < n*kib*1024 {
		t.Errorf("upstream allocated %d bytes for %d hashes; this test no longer measures what it claims", fresh, n)
	}
}

// TestConcurrentMemories: hashers with a Memory each, at once, all agree
// with upstream (run with -race).
func TestConcurrentMemories(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m Memory
			for i := range 5 {
				pw, salt := []byte(fmt.Sprintf("pw-%d-%d", g, i)), random(t, 16)
				kib := uint32(64 << (i % 3))
				if got, want := m.IDKey(pw, salt, 2, kib, 1, 32), upstream.IDKey(pw, salt, 2, kib, 1, 32); !bytes.Equal(got, want) {
					t.Errorf("goroutine %d hash %d differs from upstream", g, i)
				}
			}
		}()
	}
	wg.Wait()
}

// copied lists the upstream files this package was copied from, at
// golang.org/x/crypto v0.59.0, with their SHA-256.
var copied = map[string]string{
	"argon2.go":         "3675c69f8a2efbd5ae4d35d00f5679113b50ec32f3fe6482c669ef7b401a38d5",
	"blake2b.go":        "00b7ed36b3569e067ce4e34c92b44914e98a26f3666a2cf01b6785cc4b8201e6",
	"blamka_amd64.go":   "3f579a886e71b212df75178fef7876aa2b3ea059db0baab44cd3fb4239edca12",
	"blamka_amd64.s":    "34956c458ac293db0748178d62e110ac45837063e535a813c8a253c3fe50729f",
	"blamka_generic.go": "168ed535967c760875407a802f810d76cf527f6c1bb111612dbc81c66fcaf34c",
	"blamka_loong64.go": "f656d6f7de87592eff8e9502f395e947d6b3e103ffcb820d34c0dcf5a22c3c96",
	"blamka_loong64.s":  "36c96607033dd21fbff85ff1ef4b473825d944e7043738f799f2584993d2c6b4",
	"blamka_ref.go":     "5ee521fdb6238d46888482d6cac64f825816d52a649b894447890c80450c657a",
}

// TestUpstreamUnchanged fails when the golang.org/x/crypto that go.mod
// requires has other argon2 files than the ones this package was copied
// from: then this copy must be brought up to date (apply upstream's change
// here, keep the Memory diff) and the hashes above replaced.
func TestUpstreamUnchanged(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-json", "golang.org/x/crypto").Output()
	if err != nil {
		t.Skipf("cannot locate golang.org/x/crypto with the go command: %v", err)
	}
	var mod struct{ Version, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Skipf("go list gave no module directory (%v): %s", err, out)
	}
	entries, err := os.ReadDir(filepath.Join(mod.Dir, "argon2"))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		name := e.Name()
		if filepath.Ext(name) != ".go" && filepath.Ext(name) != ".s" || name == "argon2_test.go" {
			continue
		}
		seen++
		b, err := os.ReadFile(filepath.Join(mod.Dir, "argon2", name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if want, ok := copied[name]; !ok || hex.EncodeToString(sum[:]) != want {
			t.Errorf("golang.org/x/crypto %s changed argon2/%s since this copy (v0.59.0): bring internal/argon2 up to date", mod.Version, name)
		}
	}
	if seen != len(copied) {
		t.Errorf("golang.org/x/crypto %s has %d argon2 source files, this copy came from %d", mod.Version, seen, len(copied))
	}
}

// BenchmarkIDKey compares x/crypto's IDKey with a reused Memory at
// sessiond's default cost (19 MiB, t=2, p=1): the time is the same work, the
// bytes allocated per hash are the difference.
func BenchmarkIDKey(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), random(b, 16)
	b.Run("upstream", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			upstream.IDKey(pw, salt, 2, 19456, 1, 32)
		}
	})
	b.Run("reused", func(b *testing.B) {
		b.ReportAllocs()
		var m Memory
		for b.Loop() {
			m.IDKey(pw, salt, 2, 19456, 1, 32)
		}
	})
}
