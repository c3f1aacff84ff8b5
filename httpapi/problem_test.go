package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

// failingAuth fails every refresh with err.
type failingAuth struct {
	stubAuth
	err error
}

func (a failingAuth) Refresh(context.Context, string, sessiond.DPoPProof) (*sessiond.Tokens, error) {
	return nil, a.err
}

func TestServerErrorsAreLoggedWithTheRequestID(t *testing.T) {
	cause := errors.New("UNIQUE constraint failed: signing_keys.kid")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"a permanent database error is internal", sessiond.Internal("rotate key", cause), http.StatusInternalServerError, sessiond.CodeInternal},
		{"an outage is unavailable", sessiond.Unavailable("refresh session", cause), http.StatusServiceUnavailable, sessiond.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := httpapi.NewServer(httpapi.Deps{
				Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				Auth:   failingAuth{err: tt.err},
			})
			req := httptest.NewRequest(http.MethodPost, "/v1/refresh", strings.NewReader(`{"refresh_token":"x"}`))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			var p struct{ Code, Detail string }
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != tt.wantStatus || p.Code != tt.wantCode {
				t.Errorf("got %d %q, want %d %q", rec.Code, p.Code, tt.wantStatus, tt.wantCode)
			}
			if strings.Contains(rec.Body.String(), "constraint") {
				t.Errorf("body %q shows the cause; want a generic detail", rec.Body)
			}
			var line struct {
				Level     string
				RequestID string `json:"request_id"`
				Code      string
				Error     string
			}
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			id := rec.Header().Get("X-Request-Id")
			if line.Level != "ERROR" || id == "" || line.RequestID != id || line.Code != tt.wantCode || !strings.Contains(line.Error, cause.Error()) {
				t.Errorf("log: got %s, want an ERROR line with request_id %q, code %q and the cause", bytes.TrimSpace(logs.Bytes()), id, tt.wantCode)
			}
		})
	}
}

// TestProblemExtensionMembers: an error's Extra appears as top-level
// members of the problem document, beside the standard ones, which it
// cannot replace.
func TestProblemExtensionMembers(t *testing.T) {
	err := &sessiond.Error{Code: sessiond.CodeMFARequired, Message: "a second factor is needed",
		Extra: map[string]any{"mfa_token": "tok", "methods": []string{"totp"}, "code": "forged", "status": 200}}
	h := httpapi.NewServer(httpapi.Deps{Auth: failingAuth{err: err}})
	req := httptest.NewRequest(http.MethodPost, "/v1/refresh", strings.NewReader(`{"refresh_token":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusForbidden || p["code"] != "mfa_required" || p["status"] != float64(403) ||
		p["type"] != "urn:sessiond:problem:mfa_required" || p["detail"] != "a second factor is needed" {
		t.Errorf("got %d %v, want the standard members of a 403 mfa_required", rec.Code, p)
	}
	if p["mfa_token"] != "tok" || len(p["methods"].([]any)) != 1 {
		t.Errorf("got %v, want the extension members mfa_token and methods", p)
	}
}
