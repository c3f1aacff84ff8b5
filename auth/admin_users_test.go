package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/password"
)

// env is a Service on a fresh store, and the store's event log.
type env struct {
	svc    *auth.Service
	events sessiond.EventStore
	store  sessiond.Store
}

// eachStore runs f once per store, each on a fresh database.
func eachStore(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("database=sqlite", func(t *testing.T) {
		f(t, newEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "sessiond.db")))
	})
	t.Run("database=postgres", func(t *testing.T) {
		f(t, newEnv(t, pgtest.URL(t)))
	})
}

func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.PublicURL = "https://sessiond.test"
	cfg.Issuer = "https://sessiond.test"
	cfg.PasswordHash = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := app.New(ctx, cfg, db, slog.New(slog.DiscardHandler), sessiond.SystemClock)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: a.Auth, events: db.(sessiond.EventStore), store: a.Store}
}

// kinds returns the user's events as "type:reason-or-method[:actor]".
func (e *env) kinds(t *testing.T, userID string) []string {
	t.Helper()
	events, err := e.events.Events(t.Context(), sessiond.EventQuery{UserID: userID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		k := ev.Type
		for _, key := range []string{"reason", "method", "disabled", "email_verified", "actor"} {
			if v, ok := ev.Data[key]; ok {
				b, _ := json.Marshal(v)
				k += ":" + strings.Trim(string(b), `"`)
			}
		}
		out = append(out, k)
	}
	return out
}

func wantKinds(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

func wantErrCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := sessiond.ErrorCode(err); got != code {
		t.Errorf("got code %q (err %v), want %q", got, err, code)
	}
}

const pw = "correct horse battery staple"

var (
	key    = sessiond.Actor{KeyName: "ops"}
	client = sessiond.ClientInfo{IP: "192.0.2.7", UserAgent: "test/1"}
	yes    = func() *bool { b := true; return &b }()
	no     = func() *bool { b := false; return &b }()
)

// TestUseCaseEvents: each use case records its events, with the client's
// address, and the admin ones with the key's name.
func TestUseCaseEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		u, err := e.svc.Signup(ctx, "ada@example.com", pw, client)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Login(ctx, "ada@example.com", "wrong password, not hers", client)
		wantErrCode(t, err, sessiond.CodeInvalidCredentials)
		if _, err := e.svc.Login(ctx, "ada@example.com", pw, client); err != nil {
			t.Fatal(err)
		}
		wantKinds(t, e.kinds(t, u.ID), "user.created", "email.verification_sent", "login.failed:wrong_password", "session.created:password")
		events, _ := e.events.Events(ctx, sessiond.EventQuery{UserID: u.ID, Limit: 10})
		for _, ev := range events {
			if ev.IP != client.IP || ev.UserAgent != client.UserAgent {
				t.Errorf("%s: got ip %q, user agent %q, want the client's", ev.Type, ev.IP, ev.UserAgent)
			}
		}

		if _, err := e.svc.UpdateUser(ctx, key, u.ID, sessiond.UserPatch{Disabled: yes}); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Login(ctx, "ada@example.com", pw, client)
		wantErrCode(t, err, sessiond.CodeAccountDisabled)
		_, err = e.svc.Login(ctx, "ada@example.com", "wrong password, not hers", client)
		wantErrCode(t, err, sessiond.CodeInvalidCredentials)
		_, err = e.svc.CreateSession(ctx, key, u.ID, client)
		wantErrCode(t, err, sessiond.CodeAccountDisabled)
		got, err := e.svc.UpdateUser(ctx, key, u.ID, sessiond.UserPatch{Disabled: no, EmailVerified: yes})
		if err != nil {
			t.Fatal(err)
		}
		if got.Disabled || !got.EmailVerified {
			t.Errorf("UpdateUser: got disabled %v, email_verified %v, want false, true", got.Disabled, got.EmailVerified)
		}
		if _, err := e.svc.UpdateUser(ctx, key, u.ID, sessiond.UserPatch{Disabled: no}); err != nil {
			t.Fatal(err) // no change: no event
		}
		tok, err := e.svc.CreateSession(ctx, key, u.ID, client)
		if err != nil {
			t.Fatal(err)
		}
		if amr := claims(t, tok.AccessToken).AMR; !slices.Equal(amr, []string{"ext"}) {
			t.Errorf("amr: got %v, want [ext]", amr)
		}
		// A refresh keeps the session's amr.
		next, err := e.svc.Refresh(ctx, tok.RefreshToken, sessiond.DPoPProof{})
		if err != nil {
			t.Fatal(err)
		}
		if c := claims(t, next.AccessToken); !slices.Equal(c.AMR, []string{"ext"}) || c.AuthTime == 0 {
			t.Errorf("refreshed AT: got amr %v, auth_time %d, want [ext] and the session's", c.AMR, c.AuthTime)
		}
		wantErrCode(t, e.svc.EndSession(ctx, key, sessiond.NewID()), sessiond.CodeNotFound)
		if err := e.svc.EndSession(ctx, key, tok.SessionID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateSession(ctx, key, u.ID, client); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.EndUserSessions(ctx, key, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Login(ctx, "ada@example.com", pw, client); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteUser(ctx, key, u.ID); err != nil {
			t.Fatal(err)
		}
		wantErrCode(t, e.svc.DeleteUser(ctx, key, u.ID), sessiond.CodeNotFound)
		_, err = e.svc.User(ctx, u.ID)
		wantErrCode(t, err, sessiond.CodeNotFound)
		wantKinds(t, e.kinds(t, u.ID),
			"user.created", "email.verification_sent", "login.failed:wrong_password", "session.created:password",
			"user.updated:true:ops", "session.ended:user_disabled:ops",
			"login.failed:account_disabled", "login.failed:wrong_password",
			"user.updated:false:true:ops",
			"session.created:external:ops", "session.ended:admin:ops",
			"session.created:external:ops", "session.ended:admin:ops",
			"session.created:password",
			"session.ended:user_deleted:ops", "user.deleted:ops")
	})
}

type atClaims struct {
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
}

func claims(t *testing.T, at string) atClaims {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("got AT %q, want a compact JWS", at)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c atClaims
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAdminCreateUser(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			nu   sessiond.NewUser
			code string
		}{
			{"neither", sessiond.NewUser{Email: "a@example.com"}, sessiond.CodeInvalidRequest},
			{"both", sessiond.NewUser{Email: "a@example.com", Password: pw, PasswordHash: string(bc)}, sessiond.CodeInvalidRequest},
			{"md5", sessiond.NewUser{Email: "a@example.com", PasswordHash: "$1$abc$def"}, sessiond.CodeInvalidRequest},
			{"plain text as hash", sessiond.NewUser{Email: "a@example.com", PasswordHash: pw}, sessiond.CodeInvalidRequest},
			{"weak", sessiond.NewUser{Email: "a@example.com", Password: "password"}, sessiond.CodeWeakPassword},
			{"bad email", sessiond.NewUser{Email: "not an address", Password: pw}, sessiond.CodeInvalidEmail},
		} {
			_, err := e.svc.CreateUser(ctx, key, tc.nu)
			if got := sessiond.ErrorCode(err); got != tc.code {
				t.Errorf("%s: got code %q (err %v), want %q", tc.name, got, err, tc.code)
			}
		}

		imported, err := e.svc.CreateUser(ctx, key, sessiond.NewUser{Email: " Bob@Example.com", PasswordHash: string(bc), EmailVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		if imported.Email != "bob@example.com" || !imported.EmailVerified {
			t.Errorf("imported: got %+v, want bob@example.com, verified", imported)
		}
		_, err = e.svc.CreateUser(ctx, key, sessiond.NewUser{Email: "bob@example.com", Password: pw})
		wantErrCode(t, err, sessiond.CodeEmailTaken)
		if _, err := e.svc.Login(ctx, "bob@example.com", pw, client); err != nil {
			t.Fatalf("login with the imported bcrypt hash: %v", err)
		}
		u, err := e.svc.User(ctx, imported.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
			t.Errorf("after login the hash is %.10s…, want it rehashed with argon2id", u.PasswordHash)
		}
		if _, err := e.svc.Login(ctx, "bob@example.com", pw, client); err != nil {
			t.Fatalf("login after the rehash: %v", err)
		}
		wantKinds(t, e.kinds(t, imported.ID), "user.created:ops", "session.created:password", "session.created:password")

		// Listing: id order, pages, and the exact email.
		for _, email := range []string{"c@example.com", "d@example.com", "e@example.com"} {
			if _, err := e.svc.CreateUser(ctx, key, sessiond.NewUser{Email: email, Password: pw}); err != nil {
				t.Fatal(err)
			}
		}
		var all []string
		cursor := ""
		for range 10 {
			page, next, err := e.svc.Users(ctx, sessiond.UserQuery{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page {
				all = append(all, u.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(all) != 4 || !slices.IsSorted(all) {
			t.Errorf("paged users: got %v, want 4 ids in order", all)
		}
		found, next, err := e.svc.Users(ctx, sessiond.UserQuery{Email: "BOB@example.com"})
		if err != nil || len(found) != 1 || found[0].ID != imported.ID || next != "" {
			t.Errorf("by email: got %v, %q, %v; want bob alone", found, next, err)
		}
		_, _, err = e.svc.Users(ctx, sessiond.UserQuery{Limit: -1})
		wantErrCode(t, err, sessiond.CodeInvalidRequest)
	})
}

// TestDisableRacesRefresh: a refresh racing the disable of its user may
// win, but once UpdateUser has returned no refresh of that user succeeds,
// and the user holds no session.
func TestDisableRacesRefresh(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		const rounds = 25
		for r := range rounds {
			u, err := e.svc.CreateUser(ctx, key, sessiond.NewUser{Email: "race" + string(rune('a'+r)) + "@example.com", Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := e.svc.CreateSession(ctx, key, u.ID, client)
			if err != nil {
				t.Fatal(err)
			}
			var disabled atomic.Bool
			var lateSuccess atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() { // refreshes until one fails
				rt := tok.RefreshToken
				for {
					after := disabled.Load()
					next, err := e.svc.Refresh(ctx, rt, sessiond.DPoPProof{})
					if err != nil {
						return
					}
					if after {
						lateSuccess.Add(1)
					}
					rt = next.RefreshToken
				}
			})
			wg.Go(func() { // a backend opening sessions meanwhile
				for {
					after := disabled.Load()
					_, err := e.svc.CreateSession(ctx, key, u.ID, client)
					if err != nil {
						return
					}
					if after {
						lateSuccess.Add(1)
					}
				}
			})
			if _, err := e.svc.UpdateUser(ctx, key, u.ID, sessiond.UserPatch{Disabled: yes}); err != nil {
				t.Fatal(err)
			}
			disabled.Store(true)
			wg.Wait()
			if n := lateSuccess.Load(); n != 0 {
				t.Fatalf("round %d: %d refreshes or sessions succeeded after the disable returned", r, n)
			}
			sessions, err := e.svc.UserSessions(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(sessions) != 0 {
				t.Fatalf("round %d: the disabled user holds %d sessions", r, len(sessions))
			}
		}
	})
}
