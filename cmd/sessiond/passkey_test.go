package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

const (
	testOrigin = "https://sessiond.test"
	testRPID   = "sessiond.test"
)

// registerPasskey runs a registration ceremony for the session of at with
// a and returns the finish's answer.
func (e *testEnv) registerPasskey(a *softAuthenticator, at, name string) *response {
	e.t.Helper()
	id, opts := ceremonyOptions(e.t, e.call("POST", "/v1/passkeys/register/begin", nil, at).want(e.t, 200, ""))
	body := map[string]any{"challenge_id": id, "credential": a.create(opts)}
	if name != "" {
		body["name"] = name
	}
	return e.call("POST", "/v1/passkeys/register/finish", body, at)
}

// beginPasskeyLogin begins a usernameless login.
func (e *testEnv) beginPasskeyLogin() (string, map[string]any) {
	e.t.Helper()
	return ceremonyOptions(e.t, e.call("POST", "/v1/login/passkey/begin", nil, "").want(e.t, 200, ""))
}

// passkeyLogin signs in with a.
func (e *testEnv) passkeyLogin(a *softAuthenticator) *response {
	e.t.Helper()
	id, opts := e.beginPasskeyLogin()
	return e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": id, "credential": a.get(opts)}, "")
}

func (e *testEnv) passkeys(at string) []map[string]any {
	e.t.Helper()
	r := e.call("GET", "/v1/passkeys", nil, at).want(e.t, 200, "")
	var out struct {
		Passkeys []map[string]any `json:"passkeys"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Passkeys
}

// TestPasskeyRegisterAndLogin: a signed-in user registers a passkey with
// options in the pinned JSON form; it is listed; a usernameless login with
// it is a complete login with amr hwk+user (swk+user for a synced
// passkey), recorded as session.created by passkey; the next registration
// excludes it; rename and removal work and are the user's only.
func TestPasskeyRegisterAndLogin(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)

		id, opts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 200, ""))
		if _, wrapped := opts["publicKey"]; wrapped {
			t.Fatalf("options are wrapped in publicKey: %v", opts)
		}
		rp, _ := opts["rp"].(map[string]any)
		sel, _ := opts["authenticatorSelection"].(map[string]any)
		user, _ := opts["user"].(map[string]any)
		if rp["id"] != testRPID || rp["name"] != "sessiond" || user["name"] != "ada@example.com" ||
			sel["residentKey"] != "required" || sel["userVerification"] != "required" || opts["excludeCredentials"] != nil {
			t.Fatalf("creation options: got %v", opts)
		}
		r := e.call("POST", "/v1/passkeys/register/finish", map[string]any{"challenge_id": id, "credential": a.create(opts), "name": " Laptop "}, s.AT).want(t, 201, "")
		pkID := r.str("passkey_id")
		if pkID == "" || r.str("name") != "Laptop" || r.str("created_at") == "" {
			t.Fatalf("register finish: got %s", r.Raw)
		}
		list := e.passkeys(s.AT)
		if len(list) != 1 || list[0]["passkey_id"] != pkID || list[0]["name"] != "Laptop" || list[0]["last_used_at"] != nil {
			t.Fatalf("passkeys: got %v, want Laptop, never used", list)
		}

		// The second registration excludes the first credential.
		_, opts = ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 200, ""))
		excl, _ := opts["excludeCredentials"].([]any)
		if len(excl) != 1 || excl[0].(map[string]any)["id"] != b64.EncodeToString(a.credID) {
			t.Fatalf("excludeCredentials: got %v, want the registered credential", opts["excludeCredentials"])
		}

		lid, lopts := e.beginPasskeyLogin()
		if lopts["rpId"] != testRPID || lopts["userVerification"] != "required" || lopts["allowCredentials"] != nil || lopts["challenge"] == "" {
			t.Fatalf("request options: got %v, want discoverable with user verification", lopts)
		}
		a.counter = 1
		lr := e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": lid, "credential": a.get(lopts)}, "").want(t, 200, "")
		at := lr.str("access_token")
		if lr.str("refresh_token") == "" || lr.str("token_type") != "Bearer" {
			t.Fatalf("passkey login: got %s, want a token response", lr.Raw)
		}
		if got := amrOf(t, at); !slices.Equal(got, []string{"hwk", "user"}) {
			t.Errorf("amr: got %v, want [hwk user]", got)
		}
		if c := atClaims(t, at); c["auth_time"] == nil {
			t.Errorf("claims %v: want auth_time", c)
		}
		me := e.call("GET", "/v1/me", nil, at).want(t, 200, "")
		if me.str("email") != "ada@example.com" {
			t.Fatalf("me: got %s", me.Raw)
		}
		if got := e.passkeys(at); got[0]["last_used_at"] == nil {
			t.Errorf("passkeys after login: got %v, want last_used_at set", got)
		}
		// The refresh of a passkey session keeps its amr.
		if got := amrOf(t, e.refresh(lr.str("refresh_token")).want(t, 200, "").str("access_token")); !slices.Equal(got, []string{"hwk", "user"}) {
			t.Errorf("amr after refresh: got %v, want [hwk user]", got)
		}

		// A synced passkey (backup eligible) is a software key.
		synced := newSoftAuthenticator(t, testOrigin, testRPID)
		synced.be, synced.bs = true, true
		e.registerPasskey(synced, s.AT, "").want(t, 201, "")
		if got := amrOf(t, e.passkeyLogin(synced).want(t, 200, "").str("access_token")); !slices.Equal(got, []string{"swk", "user"}) {
			t.Errorf("amr of a synced passkey: got %v, want [swk user]", got)
		}
		if got := e.passkeys(s.AT); len(got) != 2 || got[1]["name"] != "Passkey" {
			t.Fatalf("passkeys: got %v, want the second named Passkey", got)
		}

		// Rename, remove; another user can do neither.
		e.signup("bob@example.com")
		bob := e.login("bob@example.com")
		e.call("PATCH", "/v1/passkeys/"+pkID, map[string]string{"name": "Bob's now"}, bob.AT).want(t, 404, "not_found")
		e.call("DELETE", "/v1/passkeys/"+pkID, nil, bob.AT).want(t, 404, "not_found")
		e.call("PATCH", "/v1/passkeys/"+pkID, map[string]string{"name": ""}, s.AT).want(t, 400, "invalid_request")
		rn := e.call("PATCH", "/v1/passkeys/"+pkID, map[string]string{"name": "Work laptop"}, s.AT).want(t, 200, "")
		if rn.str("name") != "Work laptop" || rn.str("passkey_id") != pkID {
			t.Fatalf("rename: got %s", rn.Raw)
		}
		for _, bad := range []string{"%ff%00", "not-an-id", strings.ToUpper(pkID)} {
			e.call("PATCH", "/v1/passkeys/"+bad, map[string]string{"name": "x"}, s.AT).want(t, 404, "not_found")
			e.call("DELETE", "/v1/passkeys/"+bad, nil, s.AT).want(t, 404, "not_found")
		}
		e.call("DELETE", "/v1/passkeys/"+pkID, nil, s.AT).want(t, 204, "")
		e.call("DELETE", "/v1/passkeys/"+pkID, nil, s.AT).want(t, 404, "not_found")
		a.counter = 2
		e.passkeyLogin(a).want(t, 401, "invalid_credentials")

		want := []string{"passkey.added", "session.created:passkey", "passkey.added", "session.created:passkey", "passkey.removed"}
		var got []string
		for _, ev := range e.userEvents("ada@example.com") {
			switch ev.Type {
			case sessiond.EventPasskeyAdded, sessiond.EventPasskeyRemoved:
				if ev.Data["passkey_id"] == nil {
					t.Errorf("%s: data %v, want passkey_id", ev.Type, ev.Data)
				}
				got = append(got, ev.Type)
			case sessiond.EventSessionCreated:
				if ev.Data["method"] == sessiond.MethodPasskey {
					got = append(got, ev.Type+":passkey")
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("events: got %v, want %v", got, want)
		}
	})
}

func (e *testEnv) userEvents(email string) []sessiond.Event {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.app.Store.UserByEmail(ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	events, err := e.app.Store.Events(ctx, sessiond.EventQuery{UserID: u.ID, Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	return events
}

// TestPasskeyLoginRefusals: each answer that must not sign anyone in is
// refused with a clear code, and none leaves a session behind.
func TestPasskeyLoginRefusals(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		sessions := func() int { return len(e.liveSessions("ada@example.com")) }
		before := sessions()

		t.Run("replayed challenge", func(t *testing.T) {
			a.counter++
			id, opts := e.beginPasskeyLogin()
			body := map[string]any{"challenge_id": id, "credential": a.get(opts)}
			e.call("POST", "/v1/login/passkey/finish", body, "").want(t, 200, "")
			e.call("POST", "/v1/login/passkey/finish", body, "").want(t, 401, "invalid_credentials")
			before++
		})
		t.Run("wrong origin", func(t *testing.T) {
			evil := *a
			evil.origin = "https://evil.test"
			evil.counter++
			e.passkeyLogin(&evil).want(t, 401, "invalid_credentials")
		})
		t.Run("wrong RP ID", func(t *testing.T) {
			evil := *a
			evil.rpID = "evil.test"
			evil.counter++
			e.passkeyLogin(&evil).want(t, 401, "invalid_credentials")
		})
		t.Run("no user verification", func(t *testing.T) {
			lazy := *a
			lazy.uv = false
			lazy.counter++
			e.passkeyLogin(&lazy).want(t, 401, "invalid_credentials")
		})
		t.Run("unknown credential", func(t *testing.T) {
			other := newSoftAuthenticator(t, testOrigin, testRPID)
			other.userHandle = a.userHandle
			e.passkeyLogin(other).want(t, 401, "invalid_credentials")
		})
		t.Run("challenge of a registration", func(t *testing.T) {
			id, _ := ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 200, ""))
			_, opts := e.beginPasskeyLogin()
			a.counter++
			e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": id, "credential": a.get(opts)}, "").want(t, 401, "invalid_credentials")
		})
		t.Run("expired challenge", func(t *testing.T) {
			id, opts := e.beginPasskeyLogin()
			e.clock.Advance(sessiond.PasskeyChallengeTTL + time.Second)
			a.counter++
			e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": id, "credential": a.get(opts)}, "").want(t, 401, "invalid_credentials")
		})
		t.Run("foreign user handle", func(t *testing.T) {
			for _, h := range [][]byte{{0xff, 0x00}, []byte("not-a-user"), {}} {
				other := *a
				other.userHandle = h
				other.counter++
				want := "invalid_credentials"
				if len(h) == 0 {
					want = "invalid_request" // no user handle: not a discoverable credential
				}
				r := e.passkeyLogin(&other)
				r.want(t, map[string]int{"invalid_credentials": 401, "invalid_request": 400}[want], want)
			}
		})
		t.Run("malformed", func(t *testing.T) {
			id, _ := e.beginPasskeyLogin()
			e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": id}, "").want(t, 400, "invalid_request")
			e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": id, "credential": map[string]any{"id": "x"}}, "").want(t, 400, "invalid_request")
			e.call("POST", "/v1/login/passkey/finish", map[string]any{"challenge_id": "nope", "credential": map[string]any{"id": "x"}}, "").want(t, 401, "invalid_credentials")
		})
		if got := sessions(); got != before {
			t.Errorf("live sessions: got %d, want %d", got, before)
		}
	})
}

// TestPasskeyCounterRegression: an assertion whose signature counter is
// not above the stored one is refused, the passkey is flagged and refused
// from then on even with a higher counter, and login.failed records why.
func TestPasskeyCounterRegression(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		a.counter = 3
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		a.counter = 5
		e.passkeyLogin(a).want(t, 200, "")
		a.counter = 5 // a copy that signed at the same count
		r := e.passkeyLogin(a).want(t, 401, "invalid_credentials")
		if !strings.Contains(r.str("detail"), "counter") {
			t.Errorf("detail: got %q, want it to name the counter", r.str("detail"))
		}
		a.counter = 9
		e.passkeyLogin(a).want(t, 401, "invalid_credentials")

		var reasons []string
		for _, ev := range e.userEvents("ada@example.com") {
			if ev.Type == sessiond.EventLoginFailed {
				reasons = append(reasons, ev.Data["reason"].(string))
			}
		}
		if !slices.Equal(reasons, []string{"passkey_cloned", "passkey_cloned"}) {
			t.Errorf("login.failed reasons: got %v, want passkey_cloned twice", reasons)
		}
	})
}

// TestPasskeyRegistrationRefusals: registration needs a recent sign-in,
// its challenge once and by the session that began it, an answer for this
// RP's origin, and a user that is not disabled; removal needs a recent
// sign-in too.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		other := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)

		t.Run("replayed", func(t *testing.T) {
			id, opts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 200, ""))
			body := map[string]any{"challenge_id": id, "credential": a.create(opts)}
			e.call("POST", "/v1/passkeys/register/finish", body, s.AT).want(t, 201, "")
			e.call("POST", "/v1/passkeys/register/finish", body, s.AT).want(t, 400, "invalid_request")
		})
		t.Run("another session's challenge", func(t *testing.T) {
			b := newSoftAuthenticator(t, testOrigin, testRPID)
			id, opts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 200, ""))
			e.call("POST", "/v1/passkeys/register/finish", map[string]any{"challenge_id": id, "credential": b.create(opts)}, other.AT).want(t, 400, "invalid_request")
		})
		t.Run("wrong origin", func(t *testing.T) {
			b := newSoftAuthenticator(t, "https://evil.test", testRPID)
			e.registerPasskey(b, s.AT, "").want(t, 400, "invalid_request")
		})
		t.Run("same credential twice", func(t *testing.T) {
			e.registerPasskey(a, s.AT, "").want(t, 400, "invalid_request")
		})
		t.Run("bad name", func(t *testing.T) {
			b := newSoftAuthenticator(t, testOrigin, testRPID)
			e.registerPasskey(b, s.AT, strings.Repeat("n", 65)).want(t, 400, "invalid_request")
		})
		if n := len(e.passkeys(s.AT)); n != 1 {
			t.Fatalf("passkeys: got %d, want 1", n)
		}
		pkID := e.passkeys(s.AT)[0]["passkey_id"].(string)

		t.Run("not recent", func(t *testing.T) {
			b := newSoftAuthenticator(t, testOrigin, testRPID)
			id, opts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 200, ""))
			e.clock.Advance(11 * time.Minute) // past the reauthentication window, inside the AT's life
			e.call("POST", "/v1/passkeys/register/begin", nil, s.AT).want(t, 403, "reauthentication_required")
			e.call("POST", "/v1/passkeys/register/finish", map[string]any{"challenge_id": id, "credential": b.create(opts)}, s.AT).want(t, 403, "reauthentication_required")
			e.call("DELETE", "/v1/passkeys/"+pkID, nil, s.AT).want(t, 403, "reauthentication_required")
			e.call("GET", "/v1/passkeys", nil, s.AT).want(t, 200, "")
			e.call("PATCH", "/v1/passkeys/"+pkID, map[string]string{"name": "Renamed"}, s.AT).want(t, 200, "")
		})
		t.Run("expired challenge", func(t *testing.T) {
			a.counter++ // a password login would now ask for the passkey too
			fresh := e.passkeyLogin(a).want(t, 200, "").tokens()
			b := newSoftAuthenticator(t, testOrigin, testRPID)
			id, opts := ceremonyOptions(t, e.call("POST", "/v1/passkeys/register/begin", nil, fresh.AT).want(t, 200, ""))
			e.clock.Advance(sessiond.PasskeyChallengeTTL + time.Second)
			e.call("POST", "/v1/passkeys/register/finish", map[string]any{"challenge_id": id, "credential": b.create(opts)}, fresh.AT).want(t, 400, "invalid_request")
			if _, err := e.app.SweepOnce(context.Background()); err != nil {
				t.Fatalf("sweep: %v", err)
			}
		})
	})
}

// TestPasskeyDisabledUser: a disabled user's passkey opens no session,
// and says so only once the passkey checked out.
func TestPasskeyDisabledUser(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		key := e.adminKey("ops")
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		u, err := e.app.Store.UserByEmail(context.Background(), "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		e.call("PATCH", "/admin/v1/users/"+u.ID, map[string]any{"disabled": true}, key).want(t, 200, "")
		a.counter = 1
		e.passkeyLogin(a).want(t, 403, "account_disabled")
		if n := len(e.liveSessions("ada@example.com")); n != 0 {
			t.Errorf("live sessions of a disabled user: got %d, want 0", n)
		}
	})
}

// TestPasskeyConcurrentFinish: of concurrent finishes of one login
// ceremony, exactly one signs in; of concurrent logins with one passkey at
// one counter value, exactly one does too.
func TestPasskeyConcurrentFinish(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "").want(t, 201, "")
		const n = 6
		race := func(bodies []map[string]any) (ok int) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for _, b := range bodies {
				wg.Go(func() {
					r := e.call("POST", "/v1/login/passkey/finish", b, "")
					mu.Lock()
					defer mu.Unlock()
					switch r.Status {
					case 200:
						ok++
					case 401:
					default:
						t.Errorf("concurrent finish: got %d %s", r.Status, r.Raw)
					}
				})
			}
			wg.Wait()
			return ok
		}

		a.counter = 1
		id, opts := e.beginPasskeyLogin()
		one := map[string]any{"challenge_id": id, "credential": a.get(opts)}
		if got := race(slices.Repeat([]map[string]any{one}, n)); got != 1 {
			t.Errorf("one challenge, %d finishes: %d signed in, want 1", n, got)
		}

		a.counter = 2
		var bodies []map[string]any
		for range n {
			id, opts := e.beginPasskeyLogin()
			bodies = append(bodies, map[string]any{"challenge_id": id, "credential": a.get(opts)})
		}
		if got := race(bodies); got != 1 {
			t.Errorf("one counter value, %d logins: %d signed in, want 1", n, got)
		}
	})
}
