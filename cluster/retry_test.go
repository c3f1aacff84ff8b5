package cluster_test

import (
	"context"
	"net/http"
	"testing"
)

// conflictTrigger makes every INSERT and UPDATE of sessions fail with a
// chosen SQLSTATE for its first fail_first attempts, counting attempts in a
// sequence (sequences are not transactional, so the rolled-back attempts
// still count). It is how a real PostgreSQL is made to answer serialization
// failures and deadlocks on demand.
const conflictTrigger = `
CREATE SEQUENCE conflict_attempts;
CREATE TABLE conflict_plan (fail_first bigint NOT NULL, code text NOT NULL);
CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	p conflict_plan;
BEGIN
	SELECT * INTO p FROM conflict_plan;
	IF FOUND AND nextval('conflict_attempts') <= p.fail_first THEN
		RAISE EXCEPTION 'injected conflict' USING ERRCODE = p.code;
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER conflict BEFORE INSERT OR UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION conflict();
`

// TestConflictsAreRetriedThen503 injects serialization failures (40001) and
// deadlocks (40P01) into logins and refreshes: a few are retried away and
// the request succeeds; when they persist, the request is tried a bounded
// number of times (3, postgres.maxAttempts) and answered 503 unavailable,
// never 500, and nothing is written. The jittered pause between attempts
// is covered by postgres's unit test of the retry policy.
func TestConflictsAreRetriedThen503(t *testing.T) {
	db, ins := pgCluster(t, 1, nil)
	base := ins[0].URL
	email, password := signup(t, base)
	conn := connect(t, db)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, conflictTrigger); err != nil {
		t.Fatalf("install trigger: %v", err)
	}
	// A session to refresh, made before any conflict is planned.
	rt := mustLogin(t, base, email, password).RefreshToken

	plan := func(code string, failFirst int) {
		t.Helper()
		_, err := conn.Exec(ctx, `TRUNCATE conflict_plan; ALTER SEQUENCE conflict_attempts RESTART;`)
		if err == nil {
			_, err = conn.Exec(ctx, `INSERT INTO conflict_plan VALUES ($1, $2)`, failFirst, code)
		}
		if err != nil {
			t.Fatalf("plan conflicts: %v", err)
		}
	}
	attempts := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM conflict_attempts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	sessions := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for _, code := range []string{"40001", "40P01"} {
		for _, tc := range []struct {
			name         string
			failFirst    int
			wantStatus   int
			wantAttempts int
		}{
			{"retried away", 2, http.StatusOK, 3},
			{"persisting", 1000, http.StatusServiceUnavailable, 3},
		} {
			t.Run("code="+code+"/"+tc.name+"/login", func(t *testing.T) {
				before := sessions()
				plan(code, tc.failFirst)
				r := login(ctx, base, email, password)
				if r.Status != tc.wantStatus || (tc.wantStatus == 503 && r.Code != "unavailable") {
					t.Errorf("login: got %v, want %d", r, tc.wantStatus)
				}
				if got := attempts(); got != tc.wantAttempts {
					t.Errorf("attempts: got %d, want %d", got, tc.wantAttempts)
				}
				want := before
				if tc.wantStatus == http.StatusOK {
					want++
				}
				if got := sessions(); got != want {
					t.Errorf("sessions: got %d, want %d", got, want)
				}
			})
			t.Run("code="+code+"/"+tc.name+"/refresh", func(t *testing.T) {
				plan(code, tc.failFirst)
				r := refresh(ctx, base, rt)
				if r.Status != tc.wantStatus || (tc.wantStatus == 503 && r.Code != "unavailable") {
					t.Fatalf("refresh: got %v, want %d", r, tc.wantStatus)
				}
				if got := attempts(); got != tc.wantAttempts {
					t.Errorf("attempts: got %d, want %d", got, tc.wantAttempts)
				}
				if r.Status == http.StatusOK {
					next, err := r.tokens()
					if err != nil {
						t.Fatal(err)
					}
					rt = next.RefreshToken
				}
			})
		}
	}
	plan("40001", 0)
	// After persisting conflicts the token is still the current one: the
	// failed attempts wrote nothing.
	if r := refresh(ctx, base, rt); r.Status != http.StatusOK {
		t.Errorf("refresh after the conflicts: got %v, want 200", r)
	}
	checkInvariants(t, db, 5, defaultIdle)
}
