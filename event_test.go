package sessiond_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func TestEventJSON(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 678912345, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		name string
		e    sessiond.Event
		want string
	}{
		{"all members", sessiond.Event{ID: "e1", Type: sessiond.EventSessionEnded, OccurredAt: at,
			UserID: "u1", SessionID: "s1", IP: "192.0.2.1", UserAgent: "ua",
			Data: map[string]any{"reason": sessiond.EndLogout}},
			`{"id":"e1","type":"session.ended","occurred_at":"2030-01-02T02:04:05.678912Z","user_id":"u1","session_id":"s1","ip":"192.0.2.1","user_agent":"ua","data":{"reason":"logout"}}`},
		{"absent members", sessiond.Event{ID: "e2", Type: sessiond.EventUserDeleted, OccurredAt: at, UserID: "u1"},
			`{"id":"e2","type":"user.deleted","occurred_at":"2030-01-02T02:04:05.678912Z","user_id":"u1"}`},
		{"whole second keeps six digits", sessiond.Event{ID: "e3", Type: sessiond.EventUserCreated, OccurredAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
			`{"id":"e3","type":"user.created","occurred_at":"2030-01-02T03:04:05.000000Z"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.e)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tc.want {
				t.Errorf("got %s, want %s", b, tc.want)
			}
			var back sessiond.Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !back.OccurredAt.Equal(sessiond.Now(tc.e.OccurredAt)) || back.ID != tc.e.ID || back.UserID != tc.e.UserID {
				t.Errorf("round trip: got %+v, want %+v", back, tc.e)
			}
		})
	}
}

func TestEventTypesAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range sessiond.EventTypes {
		if seen[typ] {
			t.Errorf("%s listed twice", typ)
		}
		seen[typ] = true
	}
	if got, want := len(seen), 16; got != want { // the 15 of user changes and admin.request
		t.Errorf("got %d event types, want %d", got, want)
	}
}

func TestNewEventIDIsVersion7AndIncreasing(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := ""
	for i := range 1000 {
		id := sessiond.NewEventID(at)
		if len(id) != 36 || id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("id %q: want a version 7, variant 10 UUID", id)
		}
		if id <= prev {
			t.Fatalf("id %d: got %s after %s, want ids of one millisecond to increase", i, id, prev)
		}
		prev = id
	}
	if a, b := sessiond.NewEventID(at), sessiond.NewEventID(at.Add(time.Millisecond)); a[:13] >= b[:13] {
		t.Errorf("got %s then %s a millisecond later, want the later to sort after", a, b)
	}
}
