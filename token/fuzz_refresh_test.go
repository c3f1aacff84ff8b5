package token_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/token"
)

// FuzzRefreshAttempt: parsing a presented refresh token never panics, and
// whatever it accepts round-trips: the token that follows it parses back
// to the next generation of the same session, with the promised hash.
func FuzzRefreshAttempt(f *testing.F) {
	r, err := token.NewRefresher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	rt, _, err := r.Mint("7f9e8d7c-6b5a-4938-8271-605f4e3d2c1b")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{rt, "", "garbage", rt + "A", rt[:len(rt)-1], "====", string(make([]byte, 300))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, next, err := r.Attempt(s)
		if err != nil {
			var e *sessiond.Error
			if !errors.As(err, &e) || e.Code != sessiond.CodeInvalidRefreshToken {
				t.Fatalf("Attempt(%q): got %v, want code invalid_refresh_token", s, err)
			}
			return
		}
		b, _, err := r.Attempt(next)
		if err != nil {
			t.Fatalf("the successor of an accepted token does not parse: %v", err)
		}
		if b.SessionID != a.SessionID || b.Generation != a.Generation+1 || !bytes.Equal(b.Hash, a.NextHash) {
			t.Fatalf("successor %+v does not follow %+v", b, a)
		}
	})
}
