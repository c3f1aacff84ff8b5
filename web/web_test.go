package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccountHandlerPaths: the mail links' paths serve the page itself,
// with the page's headers, for GET and HEAD alike; the page's own files
// are served as before and anything else under /account/ is a 404.
func TestAccountHandlerPaths(t *testing.T) {
	h := AccountHandler()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	_, index := get("GET", "/account/")
	if !strings.Contains(index, `<script type="module" src="/account/app.js">`) {
		t.Fatalf("GET /account/: got %q, want the page", index)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		wantType     string
		wantBody     string
	}{
		{"GET", "/account/", 200, "text/html; charset=utf-8", index},
		{"GET", "/account/verify", 200, "text/html; charset=utf-8", index},
		{"GET", "/account/reset", 200, "text/html; charset=utf-8", index},
		{"GET", "/account/forgot", 200, "text/html; charset=utf-8", index},
		{"HEAD", "/account/verify", 200, "text/html; charset=utf-8", ""},
		{"GET", "/account/app.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/account/sessiond-browser.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/account/style.css", 200, "text/css; charset=utf-8", ""},
		{"GET", "/account/verify/", 404, "", ""},
		{"GET", "/account/verify/app.js", 404, "", ""},
		{"GET", "/account/nothing-here", 404, "", ""},
	} {
		res, body := get(tc.method, tc.path)
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			continue
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("%s %s: got CSP %q, want scripts from the page's origin only", tc.method, tc.path, csp)
		}
		if tc.wantType != "" && res.Header.Get("Content-Type") != tc.wantType {
			t.Errorf("%s %s: got Content-Type %q, want %q", tc.method, tc.path, res.Header.Get("Content-Type"), tc.wantType)
		}
		if tc.wantBody != "" && body != tc.wantBody {
			t.Errorf("%s %s: got a body other than the page's", tc.method, tc.path)
		}
	}
}

// TestSDKCopy: the account page runs on the browser SDK, whose source is
// js/src/sessiond-browser.js; go:embed cannot reach outside this directory,
// so account/ holds a copy, which must be that file byte for byte (after a
// change there: cp js/src/sessiond-browser.js web/account/).
func TestSDKCopy(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "js", "src", "sessiond-browser.js"))
	if err != nil {
		t.Fatalf("read the SDK's source: %v", err)
	}
	embedded, err := files.ReadFile("account/sessiond-browser.js")
	if err != nil {
		t.Fatalf("read the embedded copy: %v", err)
	}
	if !bytes.Equal(src, embedded) {
		t.Fatalf("web/account/sessiond-browser.js differs from js/src/sessiond-browser.js: run cp js/src/sessiond-browser.js web/account/")
	}
}
