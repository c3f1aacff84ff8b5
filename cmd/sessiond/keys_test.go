package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

func (e *testEnv) kids() []string {
	e.t.Helper()
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	r := e.request("GET", "/.well-known/jwks.json", "", nil, nil).want(e.t, 200, "")
	if err := json.Unmarshal(r.Raw, &doc); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, k := range doc.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func (e *testEnv) waitForKids(want []string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(e.kids(), want) {
		if time.Now().After(deadline) {
			e.t.Fatalf("JWKS kids: got %v, want %v", e.kids(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeyRotation: two servers on one database, a rotation through the CLI,
// picked up by both without restart. The new key is published at once but
// signs only after the activation delay; old tokens keep verifying until
// they expire, then the old key leaves the JWKS and its private part is
// erased.
func TestKeyRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		url := dbURL(t)
		configure := func(c *app.Config) { c.KeyReload = time.Second }
		a := newTestEnv(t, url, configure)
		b := a.newPeerEnv()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go a.app.ReloadKeys(ctx, time.Second)
		go b.app.ReloadKeys(ctx, time.Second)

		a.signup("keys@example.com")
		before := a.login("keys@example.com")
		oldKids := a.kids()
		if len(oldKids) != 1 || !slices.Equal(b.kids(), oldKids) {
			t.Fatalf("before rotation: kids %v and %v, want one shared key", oldKids, b.kids())
		}

		var out bytes.Buffer
		env := getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": url})
		if err := run(ctx, []string{"keys", "rotate"}, env, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		newKid := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(out.String(), "new current signing key "))[0], ";")
		if !strings.Contains(out.String(), oldKids[0]) || !strings.Contains(out.String(), "RETIRED") || !strings.Contains(out.String(), "pending") {
			t.Fatalf("keys rotate output lacks the key table with the pending key: %s", out.String())
		}
		kidOf := func(at string) string {
			var header struct{ Kid string }
			decodeSegment(t, strings.Split(at, ".")[0], &header)
			return header.Kid
		}

		// Published first (the signing key leads the JWKS), not signing yet.
		a.waitForKids([]string{oldKids[0], newKid})
		b.waitForKids([]string{oldKids[0], newKid})
		if kid := kidOf(a.login("keys@example.com").AT); kid != oldKids[0] {
			t.Fatalf("AT right after the rotation signed with %q, want the old key %q until the new one activates", kid, oldKids[0])
		}

		// After the activation delay the new key signs.
		a.clock.Advance(sessiond.KeyActivationDelay + time.Second)
		a.waitForKids([]string{newKid, oldKids[0]})
		b.waitForKids([]string{newKid, oldKids[0]})
		a.call("GET", "/v1/me", nil, before.AT).want(t, 200, "")
		b.call("GET", "/v1/me", nil, before.AT).want(t, 200, "")
		after := a.login("keys@example.com")
		if kid := kidOf(after.AT); kid != newKid {
			t.Fatalf("new AT signed with %q, want the new key %q", kid, newKid)
		}
		b.call("GET", "/v1/me", nil, after.AT).want(t, 200, "")

		// Once every AT the old key signed has expired, it leaves the JWKS
		// and its private part is erased.
		a.clock.Advance(a.cfg.AccessTTL + 3*time.Minute)
		a.waitForKids([]string{newKid})
		b.waitForKids([]string{newKid})
		// The reload loop that dropped the key from the JWKS erases its
		// private part in a step of its own: wait for that too.
		var keys []sessiond.SigningKey
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var err error
			if keys, err = a.app.Store.ListKeys(ctx); err != nil {
				t.Fatal(err)
			}
			if len(keys) == 2 && keys[1].Erased() || time.Now().After(deadline) {
				break
			}
		}
		if len(keys) != 2 || keys[1].ID != oldKids[0] || !keys[1].Erased() || keys[0].Erased() {
			t.Fatalf("keys after expiry: got %+v, want the new key whole and the old one erased", keys)
		}

		out.Reset()
		if err := run(ctx, []string{"keys", "list"}, env, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 3 || !strings.Contains(lines[1], newKid) || !strings.Contains(lines[2], oldKids[0]) || !strings.Contains(lines[2], "erased") {
			t.Fatalf("keys list: got\n%s\nwant a header, the new current key, then the old one", out.String())
		}
	})
}
