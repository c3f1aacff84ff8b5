package password_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/password"
)

// mib4 costs 4 MiB a hash: big enough that a per-hash allocation shows.
var mib4 = password.Params{Memory: 4096, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// TestHashingReusesSlotMemory: a slot allocates its working memory once;
// later hashes and verifications in it allocate next to nothing.
func TestHashingReusesSlotMemory(t *testing.T) {
	h := password.NewHasher(mib4, 1, time.Second)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.MemoryHeld(); got != 4<<20 {
		t.Fatalf("MemoryHeld = %d after one hash in one slot, want %d", got, 4<<20)
	}
	const n = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if ok, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || err != nil {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("%d verifications allocated %d bytes, want under 1 MiB (one hash's memory is 4 MiB)", n, got)
	}
}

// TestIdleHasherReleasesMemory: once hashing has been quiet for IdleAfter,
// the slots hold no memory; the next hash works and takes it again.
func TestIdleHasherReleasesMemory(t *testing.T) {
	h := password.NewHasher(mib4, 2, time.Second)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if h.MemoryHeld() == 0 {
		t.Fatal("MemoryHeld = 0 right after hashing")
	}
	deadline := time.Now().Add(password.IdleAfter + 3*time.Second)
	for h.MemoryHeld() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("MemoryHeld = %d, %v after the last hash", h.MemoryHeld(), password.IdleAfter+3*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || err != nil {
		t.Fatalf("Verify after release = %v, %v", ok, err)
	}
	// The hash and the verification may have run in different slots.
	if got := h.MemoryHeld(); got != 4<<20 && got != 8<<20 {
		t.Fatalf("MemoryHeld = %d after hashing again, want one or two slots' %d", got, 4<<20)
	}
}

// TestConcurrentHashingWithIdleRelease: many callers on few slots, with the
// idle release firing between bursts, never share a slot's memory and never
// get a wrong answer (run with -race).
func TestConcurrentHashingWithIdleRelease(t *testing.T) {
	p := password.Params{Memory: 256, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	h := password.NewHasher(p, 2, 10*time.Second)
	ctx := context.Background()
	deadline := time.Now().Add(password.IdleAfter*2 + 500*time.Millisecond)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				pw := fmt.Sprintf("password %d/%d", g, i)
				enc, err := h.Hash(ctx, pw)
				if err != nil {
					t.Error(err)
					return
				}
				ok, err := h.Verify(ctx, pw, enc)
				bad, err2 := h.Verify(ctx, pw+"!", enc)
				if err != nil || err2 != nil || !ok || bad {
					t.Errorf("goroutine %d: Verify right = %v (%v), wrong = %v (%v)", g, ok, err, bad, err2)
					return
				}
				if i%20 == 19 { // a pause longer than IdleAfter for some
					time.Sleep(password.IdleAfter / time.Duration(1+g))
				}
			}
		}()
	}
	wg.Wait()
}
