package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

const (
	adminTestKey = "sdadm_test"
	userID       = "0b9a1c52-7f3e-4a55-9d1e-2f6a8b3c4d5e"
)

// fakeAdmin answers the admin use cases from fixed data and remembers the
// last call's arguments.
type fakeAdmin struct {
	sessiond.AdminService // the methods a test does not set panic
	mu                    sync.Mutex
	calls                 []string
	patch                 sessiond.UserPatch
	client                sessiond.ClientInfo
	newUser               sessiond.NewUser
	actor                 sessiond.Actor
	recorded              []sessiond.AdminRequest
}

var created = time.Date(2030, 1, 2, 3, 4, 5, 678912000, time.UTC)

func (f *fakeAdmin) note(call string, a sessiond.Actor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.actor = a
}

func (f *fakeAdmin) user(id string) (*sessiond.User, error) {
	if id != userID {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "user not found")
	}
	return &sessiond.User{ID: id, Email: "ada@example.com", PasswordHash: "$argon2id$secret", CreatedAt: created, Disabled: true}, nil
}

func (f *fakeAdmin) Users(_ context.Context, q sessiond.UserQuery) ([]sessiond.User, string, error) {
	u, _ := f.user(userID)
	return []sessiond.User{*u}, "next-page", nil
}

func (f *fakeAdmin) User(_ context.Context, id string) (*sessiond.User, error) { return f.user(id) }

func (f *fakeAdmin) CreateUser(_ context.Context, a sessiond.Actor, u sessiond.NewUser) (*sessiond.User, error) {
	f.note("CreateUser", a)
	f.newUser = u
	return f.user(userID)
}

func (f *fakeAdmin) UpdateUser(_ context.Context, a sessiond.Actor, id string, p sessiond.UserPatch) (*sessiond.User, error) {
	f.note("UpdateUser", a)
	f.patch = p
	return f.user(id)
}

func (f *fakeAdmin) DeleteUser(_ context.Context, a sessiond.Actor, id string) error {
	f.note("DeleteUser", a)
	_, err := f.user(id)
	return err
}

func (f *fakeAdmin) UserSessions(_ context.Context, id string) ([]sessiond.Session, error) {
	return []sessiond.Session{{ID: "s1", UserID: id, CreatedAt: created, LastUsedAt: created, ExpiresAt: created.Add(time.Hour), IP: "192.0.2.1", RefreshHash: []byte("x")}}, nil
}

func (f *fakeAdmin) CreateSession(_ context.Context, a sessiond.Actor, id string, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
	f.note("CreateSession", a)
	f.client = c
	return &sessiond.Tokens{IssuedAt: created, AccessToken: "a.b.c", AccessExpiresAt: created.Add(15 * time.Minute),
		RefreshToken: "rt", RefreshExpiresAt: created.Add(time.Hour), SessionID: "s2", DeviceToken: "device"}, nil
}

// AuthenticateAdmin and RecordAdminRequest make fakeAdmin its own
// authenticator.
func (f *fakeAdmin) AuthenticateAdmin(_ context.Context, key string) (sessiond.Actor, error) {
	if key != adminTestKey {
		return sessiond.Actor{}, sessiond.Errorf(sessiond.CodeInvalidToken, "unknown or revoked admin key")
	}
	return sessiond.Actor{KeyName: "ops"}, nil
}

func (f *fakeAdmin) RecordAdminRequest(_ context.Context, r sessiond.AdminRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded = append(f.recorded, r)
	return nil
}

func adminDo(t *testing.T, h http.Handler, method, path, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+adminTestKey)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec, out
}

func TestAdminUserHandlers(t *testing.T) {
	f := &fakeAdmin{}
	h := httpapi.NewServer(httpapi.Deps{Admin: f, AdminAuth: f})

	wantUser := map[string]any{"user_id": userID, "email": "ada@example.com", "email_verified": false, "disabled": true,
		"created_at": "2030-01-02T03:04:05.678912Z"}
	checkUser := func(t *testing.T, got any) {
		t.Helper()
		m, _ := got.(map[string]any)
		if len(m) != len(wantUser) {
			t.Errorf("user: got %v, want exactly %v", m, wantUser)
		}
		for k, v := range wantUser {
			if m[k] != v {
				t.Errorf("user.%s: got %v, want %v", k, m[k], v)
			}
		}
	}

	rec, body := adminDo(t, h, "GET", "/admin/v1/users?limit=10", "")
	if rec.Code != 200 || body["next_cursor"] != "next-page" {
		t.Fatalf("list: got %d %s", rec.Code, rec.Body)
	}
	checkUser(t, body["users"].([]any)[0])

	rec, body = adminDo(t, h, "GET", "/admin/v1/users/"+userID, "")
	if rec.Code != 200 {
		t.Fatalf("get: got %d %s", rec.Code, rec.Body)
	}
	checkUser(t, body)
	if strings.Contains(rec.Body.String(), "argon2") {
		t.Errorf("the password hash is shown: %s", rec.Body)
	}

	rec, body = adminDo(t, h, "POST", "/admin/v1/users", `{"email":"ada@example.com","password_hash":"$2b$10$abc","email_verified":true}`)
	if rec.Code != 201 || f.newUser.PasswordHash != "$2b$10$abc" || !f.newUser.EmailVerified || f.actor.KeyName != "ops" {
		t.Fatalf("create: got %d %s, call %+v by %+v", rec.Code, rec.Body, f.newUser, f.actor)
	}
	checkUser(t, body)

	rec, _ = adminDo(t, h, "PATCH", "/admin/v1/users/"+userID, `{"disabled":false}`)
	if rec.Code != 200 || f.patch.Disabled == nil || *f.patch.Disabled || f.patch.EmailVerified != nil {
		t.Fatalf("patch: got %d %s, patch %+v", rec.Code, rec.Body, f.patch)
	}

	rec, body = adminDo(t, h, "GET", "/admin/v1/users/"+userID+"/sessions", "")
	if rec.Code != 200 {
		t.Fatalf("sessions: got %d %s", rec.Code, rec.Body)
	}
	s := body["sessions"].([]any)[0].(map[string]any)
	if s["session_id"] != "s1" || s["ip"] != "192.0.2.1" || s["device_bound"] != false || len(s) != 7 {
		t.Errorf("session: got %v, want the seven public fields without current", s)
	}

	rec, body = adminDo(t, h, "POST", "/admin/v1/users/"+userID+"/sessions", `{"user_agent":"Backend/1","ip":"::ffff:192.0.2.7"}`)
	if rec.Code != 200 || body["access_token"] != "a.b.c" || body["session_id"] != "s2" || body["expires_in"] != float64(900) {
		t.Fatalf("create session: got %d %s", rec.Code, rec.Body)
	}
	if _, ok := body["device_token"]; ok {
		t.Errorf("create session answers a device token: %s", rec.Body)
	}
	if f.client.IP != "192.0.2.7" || f.client.UserAgent != "Backend/1" {
		t.Errorf("client info: got %+v, want the end user's", f.client)
	}
	rec, _ = adminDo(t, h, "POST", "/admin/v1/users/"+userID+"/sessions", "")
	if rec.Code != 200 {
		t.Errorf("create session without a body: got %d %s", rec.Code, rec.Body)
	}

	rec, _ = adminDo(t, h, "DELETE", "/admin/v1/users/"+userID, "")
	if rec.Code != 204 {
		t.Errorf("delete: got %d %s", rec.Code, rec.Body)
	}
	rec, body = adminDo(t, h, "DELETE", "/admin/v1/users/"+strings.Replace(userID, "0", "1", 1), "")
	if rec.Code != 404 || body["code"] != "not_found" {
		t.Errorf("delete of an unknown user: got %d %s", rec.Code, rec.Body)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.recorded[len(f.recorded)-1]
	if last.Actor.KeyName != "ops" || last.Method != "DELETE" || last.Status != 404 || !strings.HasPrefix(last.Path, "/admin/v1/users/") {
		t.Errorf("recorded: got %+v, want the DELETE answered 404 by ops", last)
	}
	if len(f.recorded) != 9 {
		t.Errorf("recorded %d calls, want 9", len(f.recorded))
	}
}

func TestAdminWithoutAuthenticatorRefuses(t *testing.T) {
	h := httpapi.NewServer(httpapi.Deps{})
	rec, body := adminDo(t, h, "GET", "/admin/v1/events", "")
	if rec.Code != 401 || body["code"] != "invalid_token" || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("got %d %s, want 401 invalid_token with a Bearer challenge", rec.Code, rec.Body)
	}
}
