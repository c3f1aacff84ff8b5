package dpop

import (
	"testing"
	"time"
)

// BenchmarkProof is a client's cost per request: one P-256 signature.
func BenchmarkProof(b *testing.B) {
	k := NewKey()
	c := Claims{Method: "POST", URL: target, Now: now, AccessToken: "at"}
	for b.Loop() {
		if _, err := k.Proof(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the server's CPU per proof, without the replay
// check: parsing, the P-256 (or Ed25519) signature check, the claims.
func BenchmarkVerify(b *testing.B) {
	for _, k := range []*Key{NewKey(), edKey(&testing.T{})} {
		b.Run(k.alg, func(b *testing.B) {
			p, _ := k.Proof(Claims{Method: "POST", URL: target, Now: now, AccessToken: "at"})
			r := Request{Method: "POST", URL: target, Now: now.Add(time.Second), AccessToken: "at"}
			for b.Loop() {
				if _, err := Verify(p, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
