package main

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"

	"github.com/sessiond/sessiond/api"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/internal/app"
)

// docs/API.md is the prose reference of the API; these tests keep it, the
// code and api/openapi.yaml saying the same thing.

const apiDoc = "../../docs/API.md"

// docEndpointRE is how docs/API.md introduces an endpoint: a heading
// "### METHOD /path" with nothing after the path.
var docEndpointRE = regexp.MustCompile(`(?m)^#{2,4} (GET|POST|PUT|PATCH|DELETE) (/\S*)\s*$`)

func readAPIDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// specOperations returns every "METHOD /path" of api/openapi.yaml.
func specOperations(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := libopenapi.NewDocument(api.Spec)
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			ops[strings.ToUpper(method)+" "+path] = true
		}
	}
	return ops
}

// TestAPIDocListsEveryEndpoint: the endpoint headings of docs/API.md are
// exactly the operations of api/openapi.yaml, and every route the server
// registers (httpapi.Routes) has a heading.
func TestAPIDocListsEveryEndpoint(t *testing.T) {
	doc := map[string]bool{}
	for _, m := range docEndpointRE.FindAllStringSubmatch(readAPIDoc(t), -1) {
		ep := m[1] + " " + m[2]
		if doc[ep] {
			t.Errorf("docs/API.md describes %q twice", ep)
		}
		doc[ep] = true
	}
	if len(doc) == 0 {
		t.Fatal("found no endpoint headings (### METHOD /path) in docs/API.md")
	}
	ops := specOperations(t)
	for _, op := range sorted(ops) {
		if !doc[op] {
			t.Errorf("api/openapi.yaml has %q, which docs/API.md does not describe", op)
		}
	}
	for _, ep := range sorted(doc) {
		if !ops[ep] {
			t.Errorf("docs/API.md describes %q, which api/openapi.yaml lacks", ep)
		}
	}
	routes := httpapi.Routes()
	if len(routes) == 0 {
		t.Fatal("httpapi.Routes() is empty")
	}
	for _, r := range routes {
		r = strings.TrimSuffix(r, "{$}") // "GET /{$}" is "/" alone
		if !doc[r] {
			t.Errorf("the server routes %q, which docs/API.md does not describe", r)
		}
	}
}

// TestAPIDocListsEveryErrorCode: every problem code the code can answer
// with (the Code* constants of error.go, and the HTTP layer's own code*
// constants) is in docs/API.md, as `code`.
func TestAPIDocListsEveryErrorCode(t *testing.T) {
	doc := readAPIDoc(t)
	codes := stringConsts(t, "../../error.go", "Code")
	files, err := filepath.Glob("../../httpapi/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			codes = append(codes, stringConsts(t, f, "code")...)
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d error code constants: %v", len(codes), codes)
	}
	for _, c := range codes {
		if !strings.Contains(doc, "`"+c+"`") {
			t.Errorf("error code %q is not in docs/API.md", c)
		}
	}
}

// stringConsts returns the values of the string constants of file whose
// names start with prefix followed by an upper-case letter.
func stringConsts(t *testing.T, file, prefix string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				rest, ok := strings.CutPrefix(name.Name, prefix)
				if !ok || rest == "" || rest[0] < 'A' || rest[0] > 'Z' || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// TestAPIDocListsEverySetting: every SESSIOND_* setting serve binds is in
// docs/API.md's configuration section.
func TestAPIDocListsEverySetting(t *testing.T) {
	doc := readAPIDoc(t)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := app.DefaultConfig()
	bindFlags(fs, &c)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if env := app.EnvName(f.Name); !strings.Contains(doc, "`"+env+"`") {
			t.Errorf("setting %s (-%s) is not in docs/API.md", env, f.Name)
		}
	})
	if n == 0 {
		t.Fatal("bindFlags bound no flags")
	}
}
