package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

// stubAuth answers every use case successfully, except that only the
// access token "good" authenticates, so the fuzzer reaches every decoder
// and encoder of the HTTP layer.
type stubAuth struct{}

var stubTokens = &sessiond.Tokens{IssuedAt: time.Unix(0, 0), AccessToken: "a", AccessExpiresAt: time.Unix(900, 0),
	RefreshToken: "r", RefreshExpiresAt: time.Unix(3600, 0), SessionID: "s"}

func (stubAuth) Signup(_ context.Context, email, _ string, _ sessiond.ClientInfo) (*sessiond.User, error) {
	return &sessiond.User{ID: "u", Email: email}, nil
}
func (stubAuth) Login(context.Context, string, string, sessiond.ClientInfo) (*sessiond.Tokens, error) {
	return stubTokens, nil
}
func (stubAuth) Refresh(context.Context, string, sessiond.DPoPProof) (*sessiond.Tokens, error) {
	return stubTokens, nil
}
func (stubAuth) LogoutRefresh(context.Context, string, sessiond.DPoPProof) error { return nil }
func (stubAuth) Authenticate(_ context.Context, at string, _ *sessiond.DPoPProof) (*sessiond.Principal, error) {
	if at != "good" {
		return nil, sessiond.Errorf(sessiond.CodeInvalidToken, "bad token")
	}
	return &sessiond.Principal{UserID: "u", SessionID: "s"}, nil
}
func (stubAuth) Logout(context.Context, *sessiond.Principal) error { return nil }
func (stubAuth) Me(context.Context, *sessiond.Principal) (*sessiond.User, error) {
	return &sessiond.User{ID: "u", Email: "e"}, nil
}
func (stubAuth) Sessions(context.Context, *sessiond.Principal) ([]sessiond.Session, error) {
	return []sessiond.Session{{ID: "s"}}, nil
}
func (stubAuth) RevokeSession(_ context.Context, _ *sessiond.Principal, id string) error {
	if id != "s" {
		return sessiond.Errorf(sessiond.CodeNotFound, "no such session")
	}
	return nil
}
func (stubAuth) LogoutAll(context.Context, *sessiond.Principal) error { return nil }

type stubJWKS struct{}

func (stubJWKS) JWKS() []byte { return []byte(`{"keys":[]}`) }

type stubPinger struct{}

func (stubPinger) Ping(context.Context) error { return nil }

var endpoints = []struct{ method, path string }{
	{"POST", "/v1/signup"}, {"POST", "/v1/login"}, {"POST", "/v1/refresh"}, {"POST", "/v1/logout"},
	{"POST", "/v1/logout-all"}, {"GET", "/v1/sessions"}, {"DELETE", "/v1/sessions/s"}, {"GET", "/v1/me"},
	{"GET", "/.well-known/jwks.json"}, {"GET", "/healthz"}, {"GET", "/readyz"}, {"PUT", "/v1/login"},
}

// FuzzRequest sends arbitrary bodies, content types and Authorization
// headers to every endpoint: the answer is never a 5xx, and every error is a
// problem document with a code.
func FuzzRequest(f *testing.F) {
	h := httpapi.NewServer(httpapi.Deps{Auth: stubAuth{}, JWKS: stubJWKS{}, Ready: stubPinger{}})
	seeds := []struct {
		ep       uint8
		ct, auth string
		body     string
	}{
		{0, "application/json", "", `{"email":"a@example.com","password":"correct horse battery"}`},
		{1, "application/json", "", `{"email":`},
		{1, "application/json; charset=utf-8", "", `{"email":1,"password":[]}`},
		{2, "application/json", "", `{"refresh_token":"x"} {}`},
		{2, "application/json", "", `null`},
		{2, "text/plain", "", `refresh_token=x`},
		{3, "", "Bearer good", ``},
		{3, "application/json", "", `{"refresh_token":""}`},
		{4, "", "Basic YTpi", ``},
		{5, "", "Bearer " + strings.Repeat("a", 5000), ``},
		{6, "", "Bearer good", ``},
		{7, "", "bearer good", ``},
		{7, "", "Bearer  good", ``},
		{0, "application/json", "", `{"email":"` + strings.Repeat("a", 70000) + `"}`},
		{0, "application/json", "", "\xff\xfe{}"},
		{11, "", "", ``},
	}
	for _, s := range seeds {
		f.Add(s.ep, s.ct, s.auth, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ep uint8, ct, auth string, body []byte) {
		e := endpoints[int(ep)%len(endpoints)]
		req := httptest.NewRequest(e.method, e.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (ct %q, auth %q, body %q): status %d: %s", e.method, e.path, ct, auth, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var p struct {
				Status int    `json:"status"`
				Code   string `json:"code"`
			}
			if got := rec.Header().Get("Content-Type"); got != "application/problem+json" {
				t.Fatalf("error with Content-Type %q", got)
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != rec.Code {
				t.Fatalf("error body is not a problem with a code: %v %s", err, rec.Body)
			}
		}
	})
}

// TestRequestSeeds pins what the fuzz seeds must answer.
func TestRequestSeeds(t *testing.T) {
	h := httpapi.NewServer(httpapi.Deps{Auth: stubAuth{}, JWKS: stubJWKS{}, Ready: stubPinger{}})
	tests := []struct {
		method, path, ct, auth, body string
		status                       int
	}{
		{"POST", "/v1/login", "application/json; charset=utf-8", "", `{"email":"a","password":"b"}`, 200},
		{"POST", "/v1/login", "application/json", "", `{"email":1}`, 400},
		{"POST", "/v1/logout", "", "Bearer good", ``, 204},
		{"POST", "/v1/logout", "", "", ``, 400},
		{"GET", "/v1/me", "", "bearer good", ``, 200},
		{"GET", "/v1/me", "", "Bearer  good", ``, 401},
		{"DELETE", "/v1/sessions/x", "", "Bearer good", ``, 404},
		{"PUT", "/v1/login", "", "", ``, 405},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.ct)
		req.Header.Set("Authorization", tt.auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s %s %q: got %d, want %d: %s", tt.method, tt.path, tt.body, rec.Code, tt.status, rec.Body)
		}
	}
}
