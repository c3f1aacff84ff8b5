package token_test

import (
	"errors"
	"testing"

	"github.com/sessiond/sessiond"
)

// FuzzVerify: whatever the input, Verify returns claims or an
// invalid_token error, never panics, and accepts only what the key signed.
// The seeds are every attack of TestVerifyRefuses plus a valid token.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	good := fx.sign(f)
	f.Add(good)
	for _, r := range refusals(f, fx) {
		f.Add(r.token)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := fx.verifier.Verify(tok)
		if err != nil {
			var e *sessiond.Error
			if !errors.As(err, &e) || e.Code != sessiond.CodeInvalidToken {
				t.Fatalf("Verify(%q): got error %v, want code invalid_token", tok, err)
			}
			if c != nil {
				t.Fatalf("Verify(%q): claims %+v returned with an error", tok, c)
			}
			return
		}
		// Accepted: it must carry the claims the fixture's key signed.
		if c.Subject != testUser || c.SessionID != testSession || c.Issuer != testIssuer {
			t.Fatalf("Verify(%q) accepted claims %+v that the key never signed", tok, c)
		}
	})
}
