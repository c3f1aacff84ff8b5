package main

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/internal/app"
)

// TestMetrics: the counters an operator needs move with the traffic.
func TestMetrics(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.Policy.MaxSessions = 1 })
	e.signup("m@example.com")
	first := e.login("m@example.com")
	second := e.login("m@example.com") // evicts the first
	e.refresh(first.RT).want(t, 401, "invalid_refresh_token")
	rt1 := e.refresh(second.RT).want(t, 200, "").str("refresh_token")
	e.refresh(rt1).want(t, 200, "")
	e.refresh(second.RT).want(t, 401, "refresh_token_reused")
	e.call("POST", "/v1/logout", map[string]string{"refresh_token": "x"}, "").want(t, 401, "invalid_refresh_token")

	e.request("GET", "/metrics", "", nil, nil).want(t, 404, "not_found") // the admin listener's only
	body := e.metrics()
	for _, want := range []string{
		`sessiond_signups_total{code="ok"} 1`,
		`sessiond_logins_total{code="ok"} 2`,
		`sessiond_refreshes_total{code="ok"} 2`,
		`sessiond_refreshes_total{code="invalid_refresh_token"} 1`,
		`sessiond_refreshes_total{code="refresh_token_reused"} 1`,
		`sessiond_logouts_total{code="invalid_refresh_token"} 1`,
		`sessiond_sessions_evicted_total 1`,
		`sessiond_refresh_reuse_detected_total 1`,
		`sessiond_http_request_duration_seconds_count{route="POST /v1/refresh"} 4`,
		`sessiond_db_connections_max{pool="writer"} 1`,
		`sessiond_db_connections{pool="reader",state="open"}`,
		`sessiond_password_hashes_total 3`,
		`sessiond_password_hash_memory_bytes `,
		`sessiond_http_panics_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// metrics scrapes the registry the way the admin listener serves it.
func (e *testEnv) metrics() string {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.app.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		e.t.Fatalf("/metrics: got status %d, want 200", rec.Code)
	}
	return rec.Body.String()
}
