package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	verrors "github.com/pb33f/libopenapi-validator/errors"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/httpapi"
)

// The end-to-end suite doubles as the proof that api/openapi.yaml describes
// the server: testEnv.request hands every exchange to checkSpec, so a
// handler that answers something undocumented fails the test that made it.

var spec struct {
	once sync.Once
	mu   sync.Mutex // the validator keeps per-request state; one at a time
	v    validator.Validator
	err  error
}

func specValidator(t *testing.T) validator.Validator {
	t.Helper()
	spec.once.Do(func() {
		doc, err := libopenapi.NewDocument(api.Spec)
		if err != nil {
			spec.err = err
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			spec.err = errs[0]
			return
		}
		spec.v = v
	})
	if spec.err != nil {
		t.Fatalf("load api/openapi.yaml: %v", spec.err)
	}
	return spec.v
}

// checkSpec fails t unless the exchange is one api/openapi.yaml describes.
// The response is always checked: its status must be documented for the
// operation and its body must match. The request is checked only when the
// server accepted it (2xx): the suite sends malformed requests on purpose,
// and what the spec promises about those is the problem that answers them.
// A path or method the spec does not know must be answered 404 or 405.
func checkSpec(t *testing.T, req *http.Request, body []byte, resp *http.Response, raw []byte) {
	t.Helper()
	v := specValidator(t)
	spec.mu.Lock()
	defer spec.mu.Unlock()

	newReq := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		return r
	}
	newResp := func() *http.Response {
		r := *resp
		r.Body = io.NopCloser(bytes.NewReader(raw))
		return &r
	}
	if _, errs := v.ValidateHttpRequestResponse(newReq(), newResp()); len(errs) > 0 {
		if errs[0].IsPathMissingError() || errs[0].IsOperationMissingError() {
			checkUnroutedProblem(t, req, resp, raw)
			return
		}
	}
	var errs []string
	if resp.StatusCode < 300 {
		if ok, verrs := v.ValidateHttpRequest(newReq()); !ok {
			for _, e := range verrs {
				errs = append(errs, "request: "+describe(e))
			}
		}
	}
	if ok, verrs := v.ValidateHttpResponse(newReq(), newResp()); !ok {
		for _, e := range verrs {
			errs = append(errs, "response: "+describe(e))
		}
	}
	if len(errs) > 0 {
		t.Errorf("%s %s → %d does not match api/openapi.yaml:\n  %s\nbody: %.500s",
			req.Method, req.URL.Path, resp.StatusCode, strings.Join(errs, "\n  "), raw)
	}
}

func describe(e *verrors.ValidationError) string {
	s := e.Message
	if e.Reason != "" && e.Reason != e.Message {
		s += ": " + e.Reason
	}
	for _, d := range e.SchemaValidationErrors {
		s += "\n    " + d.FieldPath + ": " + d.Reason
	}
	return s
}

// checkUnroutedProblem checks the fallback's answer to a path or method
// that no operation has.
func checkUnroutedProblem(t *testing.T, req *http.Request, resp *http.Response, raw []byte) {
	t.Helper()
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return // a CORS preflight, answered before routing by the CORS protocol
	}
	var p struct {
		Type, Title, Code string
		Status            int
	}
	err := json.Unmarshal(raw, &p)
	want := map[int]string{404: "not_found", 405: "method_not_allowed"}[resp.StatusCode]
	if err != nil || want == "" || p.Code != want || p.Status != resp.StatusCode ||
		p.Type != "urn:sessiond:problem:"+want || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("%s %s is not in api/openapi.yaml, so it must get a 404 or 405 problem: got %d %s",
			req.Method, req.URL.Path, resp.StatusCode, raw)
	}
}

// TestOpenAPIDocument: the description is a valid OpenAPI 3.1 document.
func TestOpenAPIDocument(t *testing.T) {
	v := specValidator(t)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s", e.Message, e.Reason)
		}
	}
}

// TestOpenAPIServed: GET /openapi.yaml serves the embedded description.
func TestOpenAPIServed(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
	r := e.request("GET", "/openapi.yaml", "", nil, nil).want(t, 200, "")
	if !bytes.Equal(r.Raw, api.Spec) {
		t.Fatalf("got %d bytes, want api/openapi.yaml's %d", len(r.Raw), len(api.Spec))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Fatalf("got Content-Type %q, want application/yaml", ct)
	}
}

// TestOpenAPICoversRoutes: every route the server registers
// (httpapi.Routes) is an operation of the description, and every operation
// is a route.
func TestOpenAPICoversRoutes(t *testing.T) {
	routes := map[string]bool{}
	exact := map[string]bool{} // "GET /{$}" is "/" alone, not a subtree
	for _, r := range httpapi.Routes() {
		r, isExact := strings.CutSuffix(r, "{$}")
		routes[r] = true
		exact[r] = isExact
	}
	ops := specOperations(t)
	if len(routes) == 0 {
		t.Fatal("httpapi.Routes() is empty")
	}
	for _, r := range sorted(routes) {
		if !ops[r] {
			t.Errorf("route %q is missing from api/openapi.yaml", r)
		}
	}
	// A subtree route ("GET /account/") also serves the paths below it.
	served := func(op string) bool {
		if routes[op] {
			return true
		}
		for r := range routes {
			if strings.HasSuffix(r, "/") && !exact[r] && strings.HasPrefix(op, r) {
				return true
			}
		}
		return false
	}
	for _, o := range sorted(ops) {
		if !served(o) {
			t.Errorf("api/openapi.yaml has %q, which httpapi/routes.go does not serve", o)
		}
	}
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
