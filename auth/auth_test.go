package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/token"
)

// reusedStore answers every refresh the way a store answers a reused token
// of session: it ended it (storetest proves the stores do).
type reusedStore struct {
	sessiond.Store
	session *sessiond.Session
}

func (s reusedStore) RefreshCurrent(context.Context, *sessiond.RefreshAttempt, time.Time, sessiond.Policy) (*sessiond.Session, error) {
	return nil, nil
}

// Session returns the session a generation ahead of the token, with an
// ancestor walk that always matches: a reused token.
func (s reusedStore) Session(context.Context, string) (*sessiond.Session, error) {
	return s.session, nil
}

// Tx runs fn on a transaction whose every statement succeeds.
func (s reusedStore) Tx(_ context.Context, fn sessiond.TxFunc) error { return fn(okTx{}) }

type okTx struct{ sessiond.Tx }

func (okTx) DeleteIfUnchanged(*sessiond.Session) (bool, error) { return true, nil }
func (okTx) InsertEvent(*sessiond.Event) error                 { return nil }
func (okTx) WebhookSubscribers(string) ([]string, error)       { return nil, nil }

func TestRefreshReuseLogsUserID(t *testing.T) {
	refresher, err := token.NewRefresher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sess := &sessiond.Session{ID: sessiond.NewID(), UserID: sessiond.NewID(), Generation: 4}
	rt, _, err := refresher.Mint(sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The session is four rotations ahead of rt.
	cur := rt
	for range 4 {
		if _, cur, err = refresher.Attempt(cur); err != nil {
			t.Fatal(err)
		}
	}
	a, _, err := refresher.Attempt(cur)
	if err != nil {
		t.Fatal(err)
	}
	sess.RefreshHash = a.Hash
	var logs bytes.Buffer
	svc := auth.New(auth.Deps{
		Store:     reusedStore{session: sess},
		Refresher: refresher,
		Policy:    sessiond.DefaultPolicy(),
		Logger:    slog.New(slog.NewJSONHandler(&logs, nil)),
	})

	_, err = svc.Refresh(t.Context(), rt, sessiond.DPoPProof{})
	if got := sessiond.ErrorCode(err); got != sessiond.CodeRefreshTokenReused {
		t.Fatalf("got code %q (err %v), want %q", got, err, sessiond.CodeRefreshTokenReused)
	}
	var line struct {
		Level, Msg        string
		UserID            string  `json:"user_id"`
		SessionID         string  `json:"session_id"`
		Generation        *uint64 `json:"generation"`
		CurrentGeneration *uint64 `json:"current_generation"`
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log: got %q, want one JSON line: %v", logs.String(), err)
	}
	if line.Level != "WARN" || line.UserID != sess.UserID || line.SessionID != sess.ID ||
		line.Generation == nil || *line.Generation != 0 || line.CurrentGeneration == nil || *line.CurrentGeneration != 4 {
		t.Errorf("log: got %s, want a WARN line with user_id %s, session_id %s, generation 0, current_generation 4",
			bytes.TrimSpace(logs.Bytes()), sess.UserID, sess.ID)
	}
}
