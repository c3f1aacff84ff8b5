package client_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
)

// The Verify benchmarks compare a full verification with the bare
// signature check of the same token: what the parsing and claim checks
// cost on top of the cryptography (docs/BENCHMARKS.md).

func benchToken(b *testing.B) (*client.Verifier, string, ed25519.PublicKey) {
	b.Helper()
	j := newJWKSServer(&testing.T{})
	b.Cleanup(j.srv.Close)
	v, err := client.NewVerifier(context.Background(), j.srv.URL, testIssuer, testAudience, &client.VerifierOptions{RefreshInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	key := j.key("k1")
	return v, sign(key, goodHeader(), goodClaims(time.Now())), key.Public().(ed25519.PublicKey)
}

func BenchmarkVerify(b *testing.B) {
	v, tok, _ := benchToken(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	_, tok, pub := benchToken(b)
	i := strings.LastIndexByte(tok, '.')
	msg := []byte(tok[:i])
	sig, _ := base64.RawURLEncoding.DecodeString(tok[i+1:])
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}
