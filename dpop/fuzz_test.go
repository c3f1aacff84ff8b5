package dpop

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary proofs: it must never panic, must
// refuse with an *Error, and whatever it accepts must be a proof whose
// every checked claim holds.
func FuzzVerify(f *testing.F) {
	k := NewKey()
	for _, c := range []Claims{
		{Method: "POST", URL: target, Now: now},
		{Method: "POST", URL: target, Now: now, AccessToken: "at", Nonce: "n"},
	} {
		p, _ := k.Proof(c)
		f.Add(p, "at")
	}
	p, _ := edKey(&testing.T{}).Proof(Claims{Method: "POST", URL: target, Now: now})
	f.Add(p, "")
	f.Add("e30.e30.", "")
	f.Add(strings.Repeat(".", 3), "")
	f.Fuzz(func(t *testing.T, proof, at string) {
		got, err := Verify(proof, Request{Method: "POST", URL: target, Now: now.Add(time.Second), AccessToken: at})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("refusal is not an invalid-proof *Error: %v", err)
			}
			return
		}
		if got.Thumbprint == "" || got.ID == "" || len(got.ID) > MaxIDLength {
			t.Fatalf("accepted a proof without key or jti: %+v", got)
		}
		if d := now.Sub(got.IssuedAt); d >= Window || d < -Leeway {
			t.Fatalf("accepted iat %v", got.IssuedAt)
		}
	})
}
