package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond/client"
)

// authLog is a server that records the Authorization header of each request.
type authLog struct {
	mu   sync.Mutex
	seen map[string]string // path → Authorization
	srv  *httptest.Server
}

func newAuthLog(t *testing.T, h http.HandlerFunc) *authLog {
	t.Helper()
	l := &authLog{seen: map[string]string{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.seen[r.URL.Path] = r.Header.Get("Authorization")
		l.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *authLog) auth(t *testing.T, path string) string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.seen[path]
	if !ok {
		t.Fatalf("%s was never requested", path)
	}
	return a
}

// TestHTTPClientTokenOrigins: the AT goes to sessiond's origin and the
// TokenOrigins only. A redirect from the allowed server to another one
// reaches it without the token, a 401 from it causes no refresh, and
// listing its origin (spelled in capitals, with a path) lets the token go.
func TestHTTPClientTokenOrigins(t *testing.T) {
	other := newAuthLog(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	var refreshes atomic.Int64
	allowed := newAuthLog(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/login", "/v1/refresh":
			if r.URL.Path == "/v1/refresh" {
				refreshes.Add(1)
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"access_token": "the-at", "token_type": "Bearer",
				"expires_in": 900, "refresh_token": "the-rt", "refresh_expires_in": 3600, "session_id": "s1"})
		case "/hop":
			http.Redirect(w, r, other.srv.URL+r.URL.Query().Get("to"), http.StatusFound)
		}
	})
	get := func(hc *http.Client, url string) int {
		t.Helper()
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	login := func(opts *client.Options) *http.Client {
		t.Helper()
		c := client.New(allowed.srv.URL, opts)
		if _, err := c.Login(context.Background(), "a@example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		return c.HTTPClient()
	}
	const want = "Bearer the-at"

	hc := login(nil)
	get(hc, allowed.srv.URL+"/hop?to=/landed")
	if got := allowed.auth(t, "/hop"); got != want {
		t.Fatalf("to sessiond's origin: got Authorization %q, want %q", got, want)
	}
	if got := other.auth(t, "/landed"); got != "" {
		t.Fatalf("redirected to another origin: got Authorization %q, want none", got)
	}
	get(hc, other.srv.URL+"/direct")
	if got := other.auth(t, "/direct"); got != "" {
		t.Fatalf("straight to another origin: got Authorization %q, want none", got)
	}
	if status := get(hc, other.srv.URL+"/refuse"); status != 401 || refreshes.Load() != 0 {
		t.Fatalf("a 401 from another origin: got %d after %d refreshes, want 401 and none", status, refreshes.Load())
	}

	hc = login(&client.Options{TokenOrigins: []string{strings.ToUpper(other.srv.URL) + "/api"}})
	get(hc, allowed.srv.URL+"/hop?to=/landed-listed")
	if got := other.auth(t, "/landed-listed"); got != want {
		t.Fatalf("redirected to a listed origin: got Authorization %q, want %q", got, want)
	}
	get(hc, other.srv.URL+"/direct-listed")
	if got := other.auth(t, "/direct-listed"); got != want {
		t.Fatalf("straight to a listed origin: got Authorization %q, want %q", got, want)
	}
}
