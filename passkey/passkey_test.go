package passkey_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/passkey"
)

// TestOptionsAreTheBrowsersJSONForms: the options are the WebAuthn Level 3
// JSON forms, unwrapped, with the choices the package documents.
func TestOptionsAreTheBrowsersJSONForms(t *testing.T) {
	rp, err := passkey.New(passkey.Options{PublicURL: "https://auth.example.com", Name: "Example"})
	if err != nil {
		t.Fatal(err)
	}
	raw, state, err := rp.BeginRegistration(sessiond.PasskeyUser{ID: "user-1", Name: "ada@example.com"}, [][]byte{{1, 2, 3}})
	if err != nil || len(state) == 0 {
		t.Fatalf("BeginRegistration: %v", err)
	}
	var c struct {
		PublicKey any `json:"publicKey"`
		RP        struct{ ID, Name string }
		User      struct{ ID, Name, DisplayName string }
		Challenge string
		Params    []struct{ Alg int } `json:"pubKeyCredParams"`
		Timeout   int
		Exclude   []struct{ ID, Type string } `json:"excludeCredentials"`
		Selection struct {
			ResidentKey        string `json:"residentKey"`
			RequireResidentKey bool   `json:"requireResidentKey"`
			UserVerification   string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		Attestation string
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	var algs []int
	for _, p := range c.Params {
		algs = append(algs, p.Alg)
	}
	switch {
	case c.PublicKey != nil:
		t.Errorf("creation options wrapped in publicKey: %s", raw)
	case c.RP.ID != "auth.example.com" || c.RP.Name != "Example":
		t.Errorf("rp: got %+v", c.RP)
	case c.User.ID != "dXNlci0x" || c.User.Name != "ada@example.com":
		t.Errorf("user: got %+v, want the base64url user id and the email", c.User)
	case len(c.Challenge) != 43:
		t.Errorf("challenge %q: want 32 bytes, base64url", c.Challenge)
	case len(algs) != 3 || algs[0] != -7 || algs[1] != -8 || algs[2] != -257:
		t.Errorf("algorithms: got %v, want ES256, EdDSA, RS256", algs)
	case c.Timeout != 300000:
		t.Errorf("timeout: got %d, want 300000", c.Timeout)
	case len(c.Exclude) != 1 || c.Exclude[0].ID != "AQID" || c.Exclude[0].Type != "public-key":
		t.Errorf("excludeCredentials: got %+v", c.Exclude)
	case c.Selection.ResidentKey != "required" || !c.Selection.RequireResidentKey || c.Selection.UserVerification != "required":
		t.Errorf("authenticatorSelection: got %+v", c.Selection)
	case c.Attestation != "none":
		t.Errorf("attestation: got %q, want none", c.Attestation)
	}

	raw, _, err = rp.BeginLogin(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r["publicKey"] != nil || r["rpId"] != "auth.example.com" || r["userVerification"] != "required" || r["allowCredentials"] != nil {
		t.Errorf("request options: got %s", raw)
	}
}

func TestNewNeedsADomain(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://[::1]:8080"} {
		if _, err := passkey.New(passkey.Options{PublicURL: u}); !errors.Is(err, passkey.ErrNoDomain) {
			t.Errorf("New(%s): got %v, want ErrNoDomain", u, err)
		}
	}
	for _, u := range []string{"http://localhost:8080", "https://auth.example.com"} {
		if _, err := passkey.New(passkey.Options{PublicURL: u}); err != nil {
			t.Errorf("New(%s): %v", u, err)
		}
	}
}
