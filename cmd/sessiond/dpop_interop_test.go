package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
)

// TestDPoPInteropPanva runs a DPoP client nobody here wrote, panva's dpop
// package on Node (testdata/dpop-interop, pinned by its lockfile), against
// a real sessiond on each store, with and without server nonces: it makes
// ES256 and Ed25519 keys and proofs, signs in, refreshes and calls
// GET /v1/me. The session must be bound to the package's own thumbprint
// of its key. Skipped when node or npm, or the package, cannot be had,
// except in CI, which installs them.
func TestDPoPInteropPanva(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNPM := exec.LookPath("npm")
	if errNode != nil || errNPM != nil {
		skipUnlessCI(t, "node and npm are needed for the interoperability test with panva's dpop package")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "interop.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "dpop-interop", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		skipUnlessCI(t, fmt.Sprintf("npm ci of panva's dpop package failed (offline?): %v\n%s", err, out))
	}
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		for _, nonce := range []bool{false, true} {
			name := "nonce=off"
			if nonce {
				name = "nonce=on"
			}
			t.Run(name, func(t *testing.T) {
				// The proofs are for the URL the client reaches, so that is
				// the public URL.
				var h atomic.Pointer[http.Handler]
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
				defer srv.Close()
				e := newTestEnv(t, dbURL(t), func(c *app.Config) {
					c.PublicURL, c.Issuer, c.DPoPNonce, c.DPoP = srv.URL, srv.URL, nonce, "required"
				})
				h.Store(&e.app.Handler)
				e.signup("ada@example.com")
				// The test's clock runs near the real one, which the
				// client's iat comes from.
				cmd := exec.CommandContext(ctx, node, "interop.mjs")
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "SESSIOND_URL="+srv.URL, "EMAIL=ada@example.com", "PASSWORD="+testPassword)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("node interop.mjs: %v\n%s", err, stderr.Bytes())
				}
				seen := map[string]bool{}
				sc := bufio.NewScanner(bytes.NewReader(out))
				for sc.Scan() {
					var r struct {
						Alg         string `json:"alg"`
						JKT         string `json:"jkt"`
						AccessToken string `json:"access_token"`
						SessionID   string `json:"session_id"`
					}
					if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
						t.Fatalf("node output %q: %v", sc.Text(), err)
					}
					seen[r.Alg] = true
					if jkt, _ := cnfJKT(t, r.AccessToken); jkt != r.JKT {
						t.Errorf("%s: AT cnf.jkt %q, want the package's thumbprint %q", r.Alg, jkt, r.JKT)
					}
					s, err := e.app.Store.Session(context.Background(), r.SessionID)
					if err != nil || s == nil || s.DPoPJKT != r.JKT {
						t.Errorf("%s: stored session %+v (%v), want bound to %q", r.Alg, s, err, r.JKT)
					}
				}
				if !seen["ES256"] || !seen["Ed25519"] {
					t.Errorf("node reported %v, want ES256 and Ed25519", seen)
				}
			})
		}
	})
}

// skipUnlessCI skips t for why, a missing tool; in CI (CI=true), which
// installs every tool the tests need, a missing one fails instead, so that
// the test cannot pass by not running.
func skipUnlessCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
