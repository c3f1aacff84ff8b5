// Command argonrate measures the raw argon2id rate of this machine at
// sessiond's parameters: the ceiling of login throughput
// (docs/BENCHMARKS.md, target 2). It hashes with -c goroutines for -d and
// prints hashes per second.
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

	"github.com/sessiond/sessiond/password"
)

func main() {
	c := flag.Int("c", 16, "concurrent hashers")
	d := flag.Duration("d", 10*time.Second, "duration")
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
			for time.Now().Before(deadline) {
				rand.Read(salt)
				argon2.IDKey([]byte("correct horse battery staple"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("argon2id m=%d t=%d p=%d  c=%d  %.1fs  %d hashes  %.1f hashes/s\n",
		p.Memory, p.Iterations, p.Parallelism, *c, el.Seconds(), n.Load(), float64(n.Load())/el.Seconds())
}
