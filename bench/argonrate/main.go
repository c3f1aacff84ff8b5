// Command argonrate measures the raw argon2id rate of this machine at
// sessiond's parameters: the ceiling of login throughput
// (docs/BENCHMARKS.md, target 2). It hashes with -c goroutines for -d and
// prints hashes per second. By default it calls golang.org/x/crypto/argon2,
// which allocates the memory parameter on every call: the raw rate the target
// is measured against. With -reuse each goroutine reuses its own working
// memory (internal/argon2), as sessiond's hashing slots do.
//
//	go run ./bench/argonrate -c 16 -d 10s
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	reuse "github.com/sessiond/sessiond/internal/argon2"
	"github.com/sessiond/sessiond/password"
)

func main() {
	c := flag.Int("c", 16, "concurrent hashers")
	d := flag.Duration("d", 10*time.Second, "duration")
	reused := flag.Bool("reuse", false, "reuse each hasher's working memory (internal/argon2) instead of x/crypto's allocation per call")
	flag.Parse()
	p := password.DefaultParams()
	var n atomic.Int64
	deadline := time.Now().Add(*d)
	start := time.Now()
	var wg sync.WaitGroup
	for range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			salt := make([]byte, p.SaltLength)
			hash := argon2.IDKey
			if *reused {
				hash = new(reuse.Memory).IDKey
			}
			for time.Now().Before(deadline) {
				rand.Read(salt)
				hash([]byte("correct horse battery staple"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	impl := "x/crypto"
	if *reused {
		impl = "reused memory"
	}
	fmt.Printf("argon2id (%s) m=%d t=%d p=%d  c=%d  %.1fs  %d hashes  %.1f hashes/s\n",
		impl, p.Memory, p.Iterations, p.Parallelism, *c, el.Seconds(), n.Load(), float64(n.Load())/el.Seconds())
}
