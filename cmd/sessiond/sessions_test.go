package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
)

type listed struct {
	ID, UA, IP        string
	Current           bool
	LastUsed, Created time.Time
}

func (e *testEnv) sessions(at string) []listed {
	e.t.Helper()
	r := e.call("GET", "/v1/sessions", nil, at).want(e.t, 200, "")
	var out []listed
	for _, v := range r.Body["sessions"].([]any) {
		m := v.(map[string]any)
		lu, _ := time.Parse(time.RFC3339Nano, m["last_used_at"].(string))
		cr, _ := time.Parse(time.RFC3339Nano, m["created_at"].(string))
		for _, k := range []string{"session_id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"} {
			if _, ok := m[k]; !ok {
				e.t.Fatalf("session lacks %q: %v", k, m)
			}
		}
		out = append(out, listed{ID: m["session_id"].(string), UA: m["user_agent"].(string), IP: m["ip"].(string),
			Current: m["current"].(bool), LastUsed: lu, Created: cr})
	}
	return out
}

func ids(ls []listed) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func TestSessionsEndpoints(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.IdleTTL = 2 * time.Hour })
		e.signup("list@example.com")
		e.signup("other@example.com")
		a := e.login("list@example.com")
		b := e.login("list@example.com")
		c := e.login("list@example.com")
		other := e.login("other@example.com")

		got := e.sessions(b.AT)
		if want := []string{c.SID, b.SID, a.SID}; strings.Join(ids(got), ",") != strings.Join(want, ",") {
			t.Fatalf("order: got %v, want most recently used first %v", ids(got), want)
		}
		for _, s := range got {
			if s.Current != (s.ID == b.SID) {
				t.Errorf("session %s: current %v, want %v", s.ID, s.Current, s.ID == b.SID)
			}
			if s.IP != "127.0.0.1" || !strings.HasPrefix(s.UA, "Go-http-client") {
				t.Errorf("session %s: ip %q ua %q, want 127.0.0.1 and the Go client", s.ID, s.IP, s.UA)
			}
		}

		// A refresh visibly moves last_used_at and reorders the list.
		before := got[2].LastUsed
		e.refresh(a.RT).want(t, 200, "")
		got = e.sessions(b.AT)
		if got[0].ID != a.SID || !got[0].LastUsed.After(before) {
			t.Fatalf("after refreshing %s: got %v first at %v, want it first after %v", a.SID, got[0].ID, got[0].LastUsed, before)
		}

		// Another user's session, or an unknown one, is 404 and untouched.
		e.call("DELETE", "/v1/sessions/"+other.SID, nil, a.AT).want(t, 404, "not_found")
		e.call("DELETE", "/v1/sessions/00000000-0000-4000-8000-000000000000", nil, a.AT).want(t, 404, "not_found")
		e.call("DELETE", "/v1/sessions/not-a-uuid", nil, a.AT).want(t, 404, "not_found")
		e.call("GET", "/v1/me", nil, other.AT).want(t, 200, "")

		e.call("DELETE", "/v1/sessions/"+c.SID, nil, a.AT).want(t, 204, "")
		e.call("GET", "/v1/me", nil, c.AT).want(t, 401, "invalid_token")
		e.refresh(c.RT).want(t, 401, "invalid_refresh_token")
		if got := ids(e.sessions(a.AT)); len(got) != 2 {
			t.Fatalf("after revoking one: got %v, want 2 sessions", got)
		}

		// Idle sessions vanish from the list: b was last used at login.
		e.clock.Advance(90 * time.Minute)
		a2 := e.login("list@example.com")
		otherRT := e.refresh(other.RT).want(t, 200, "").str("refresh_token") // keeps the other user's session live
		e.clock.Advance(45 * time.Minute)
		at2 := e.refresh(a2.RT).want(t, 200, "").str("access_token")
		e.refresh(otherRT).want(t, 200, "")
		got = e.sessions(at2)
		for _, s := range got {
			if s.ID == b.SID {
				t.Fatalf("idle-expired session %s is still listed", b.SID)
			}
		}
		e.call("GET", "/v1/me", nil, b.AT).want(t, 401, "invalid_token")

		e.call("POST", "/v1/logout-all", nil, at2).want(t, 204, "")
		e.call("GET", "/v1/me", nil, at2).want(t, 401, "invalid_token")
		if n := len(e.liveSessions("list@example.com")); n != 0 {
			t.Fatalf("after logout-all: got %d live sessions, want 0", n)
		}
		if n := len(e.liveSessions("other@example.com")); n != 1 {
			t.Fatalf("logout-all touched another user: got %d live sessions, want 1", n)
		}
	})
}

func TestClientIPAndUserAgent(t *testing.T) {
	tests := []struct {
		name, trusted, xff, wantIP string
	}{
		{"no proxies trusted: XFF ignored", "", "203.0.113.7", "127.0.0.1"},
		{"trusted peer: rightmost untrusted hop", "127.0.0.0/8", "198.51.100.1, 203.0.113.7", "203.0.113.7"},
		{"trusted chain skipped", "127.0.0.0/8,10.0.0.0/8", "203.0.113.7, 10.1.2.3", "203.0.113.7"},
		{"spoofed left entries do not win", "127.0.0.1", "1.1.1.1, 203.0.113.9", "203.0.113.9"},
		{"garbage XFF: the peer", "127.0.0.1", "not-an-ip", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.TrustedProxies = tt.trusted })
			e.signup("ip@example.com")
			ua := strings.Repeat("Mozilla/5.0 é ", 100)
			r := e.request("POST", "/v1/login", "application/json",
				[]byte(`{"email":"ip@example.com","password":"`+testPassword+`"}`),
				map[string]string{"X-Forwarded-For": tt.xff, "User-Agent": ua}).want(t, 200, "")
			s := e.sessions(r.str("access_token"))[0]
			if s.IP != tt.wantIP {
				t.Errorf("ip: got %q, want %q", s.IP, tt.wantIP)
			}
			if len(s.UA) > 256 || !strings.HasPrefix(ua, s.UA) {
				t.Errorf("user agent: got %d bytes %q, want a prefix of at most 256 bytes", len(s.UA), s.UA)
			}
		})
	}
	if err := (&app.Config{TrustedProxies: "10.0.0.0/33"}).Validate(); err == nil {
		t.Error("an invalid CIDR was accepted")
	}
}
