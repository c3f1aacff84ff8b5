package sessiond_test

import (
	"go/build"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies is a statement of policy (after go/build's
// deps_test.go): dependencies point inward.
func TestDependencies(t *testing.T) {
	const mod = "github.com/sessiond/sessiond"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// Which of this module's packages each package may import; "std" marks
	// packages that may import only the standard library and these.
	allowed := map[string][]string{
		mod:                      {},
		mod + "/password":        {mod, mod + "/internal/argon2"},
		mod + "/internal/argon2": {}, // a copy of x/crypto's argon2: nothing of ours
		mod + "/token":           {mod},
		mod + "/auth":            {mod, mod + "/password", mod + "/token", mod + "/mfa", mod + "/dpop"},
		mod + "/mfa":             {}, // TOTP and recovery codes: no storage, nothing of ours
		mod + "/httpapi":         {mod, mod + "/api", mod + "/dpop"},
		mod + "/sqlite":          {mod},
		mod + "/postgres":        {mod},
		mod + "/storetest":       {mod, mod + "/auth"}, // the suite proves auth's algorithms on each store
		mod + "/outbox":          {mod},                // the delivery loop: no channel's transport
		mod + "/webhook":         {mod, mod + "/outbox"},
		mod + "/mail":            {mod, mod + "/outbox"},
		mod + "/mail/mailtest":   {}, // a test SMTP server: none of our code
		mod + "/internal/pgtest": {},
		mod + "/api":             {},
		mod + "/client":          {mod + "/dpop"}, // for other services: no sessiond code but the proofs it shares
		mod + "/examples/notes":  {mod + "/client"},
		mod + "/web":             {},
		mod + "/seal":            {},    // secrets at rest: the standard library's AEAD only
		mod + "/passkey":         {mod}, // WebAuthn checks, behind sessiond.RelyingParty
		mod + "/dpop":            {},    // DPoP proofs: the standard library only, shared with client
	}
	stdOnly := map[string]bool{mod: true, mod + "/client": true, mod + "/seal": true, mod + "/dpop": true}
	// Packages that must not import these: the outbox worker knows nothing
	// of how a channel delivers.
	forbidden := map[string][]string{
		mod + "/outbox": {"net/http", "net/smtp", "net", "github.com/wneessen/go-mail"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		ok, ruled := allowed[pkg]
		for _, imp := range imports {
			switch {
			case strings.HasPrefix(imp, mod):
				if ruled && !contains(ok, imp) {
					t.Errorf("%s imports %s, which its rule does not allow", pkg, imp)
				}
				if !ruled && pkg != mod+"/cmd/sessiond" && pkg != mod+"/internal/app" && (strings.HasSuffix(imp, "/sqlite") || strings.HasSuffix(imp, "/postgres")) {
					t.Errorf("%s imports the concrete store %s; only the wiring (internal/app, cmd/sessiond) may", pkg, imp)
				}
			case contains(forbidden[pkg], imp) || strings.HasPrefix(imp, "net/http/") && contains(forbidden[pkg], "net/http"):
				t.Errorf("%s imports %s, which its rule forbids", pkg, imp)
			case stdOnly[pkg] && !isStd(imp):
				t.Errorf("%s imports %s; it may use the standard library only", pkg, imp)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isStd(path string) bool {
	p, err := build.Import(path, "", build.FindOnly)
	return err == nil && p.Goroot
}
