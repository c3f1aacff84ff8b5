package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// outboxStore is what the outbox tests need of a store.
type outboxStore interface {
	sessiond.OutboxStore
	sessiond.EventStore
}

func openOutbox(t *testing.T, open opener) outboxStore {
	t.Helper()
	s, ok := open(t).Store.(outboxStore)
	if !ok {
		t.Fatalf("store does not implement sessiond.OutboxStore and sessiond.EventStore")
	}
	return s
}

// newMessage returns a webhook message to target due at due.
func newMessage(target string, due time.Time) *sessiond.OutboxMessage {
	return &sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook, Target: target,
		EventID: sessiond.NewID(), Payload: []byte(`{"id":"x"}`), CreatedAt: t0, NextAttemptAt: due}
}

func claim(t *testing.T, s outboxStore, owner string, now time.Time, limit int, skip ...string) []sessiond.OutboxMessage {
	t.Helper()
	got, err := s.ClaimOutbox(ctx(t), sessiond.OutboxClaim{Owner: owner, Now: now, Lease: time.Minute, Limit: limit, SkipTargets: skip})
	mustOK(t, err, "ClaimOutbox")
	return got
}

func msgIDs(msgs []sessiond.OutboxMessage) []string {
	out := make([]string, len(msgs))
	for i := range msgs {
		out[i] = msgs[i].ID
	}
	return out
}

func testOutbox(t *testing.T, open opener) {
	t.Run("claim respects due time, order, limit and skipped targets", func(t *testing.T) {
		s := openOutbox(t, open)
		a1, a2, b, later := newMessage("a", at(time.Second)), newMessage("a", at(2*time.Second)), newMessage("b", at(0)), newMessage("a", at(time.Hour))
		mustOK(t, s.InsertOutbox(ctx(t), a1, a2, b, later), "InsertOutbox")

		wantIDs(t, "claim skipping b, limit 1", msgIDs(claim(t, s, "w1", at(time.Minute), 1, "b")), []string{a1.ID})
		wantIDs(t, "claim skipping b", msgIDs(claim(t, s, "w1", at(time.Minute), 10, "b")), []string{a2.ID})
		got := claim(t, s, "w1", at(time.Minute), 10)
		wantIDs(t, "claim of the rest", msgIDs(got), []string{b.ID})
		if m := got[0]; m.Channel != b.Channel || m.Target != b.Target || m.EventID != b.EventID || string(m.Payload) != string(b.Payload) ||
			m.Status != sessiond.OutboxPending || m.Attempts != 0 || !m.CreatedAt.Equal(t0) || !m.NextAttemptAt.Equal(at(0)) {
			t.Errorf("claimed message: got %+v, want the inserted %+v", m, b)
		}
		wantIDs(t, "claim again, all leased or not due", msgIDs(claim(t, s, "w2", at(time.Minute), 10)), []string{})
	})

	t.Run("an expired lease is taken over, and the stale owner cannot record", func(t *testing.T) {
		s := openOutbox(t, open)
		m := newMessage("a", t0)
		mustOK(t, s.InsertOutbox(ctx(t), m), "InsertOutbox")
		wantIDs(t, "first claim", msgIDs(claim(t, s, "w1", t0, 10)), []string{m.ID})
		wantIDs(t, "claim within the lease", msgIDs(claim(t, s, "w2", at(59*time.Second), 10)), []string{})
		wantIDs(t, "claim after the lease", msgIDs(claim(t, s, "w2", at(time.Minute), 10)), []string{m.ID})

		err := s.RecordOutboxAttempt(ctx(t), "w1", sessiond.OutboxAttempt{ID: m.ID, At: at(61 * time.Second), Status: sessiond.OutboxDelivered, LastStatus: "delivered"})
		if !errors.Is(err, sessiond.ErrLeaseLost) {
			t.Errorf("stale owner records: got %v, want ErrLeaseLost", err)
		}
		mustOK(t, s.RecordOutboxAttempt(ctx(t), "w2", sessiond.OutboxAttempt{ID: m.ID, At: at(62 * time.Second), Status: sessiond.OutboxDelivered, LastStatus: "delivered"}), "current owner records")
		d := deliveries(t, s, "a")
		if len(d) != 1 || d[0].Attempts != 1 || d[0].Status != sessiond.OutboxDelivered {
			t.Errorf("deliveries: got %+v, want one delivered after 1 attempt", d)
		}
	})

	t.Run("an owner whose lease ran out cannot record", func(t *testing.T) {
		s := openOutbox(t, open)
		m := newMessage("a", t0)
		mustOK(t, s.InsertOutbox(ctx(t), m), "InsertOutbox")
		claim(t, s, "w1", t0, 10)
		err := s.RecordOutboxAttempt(ctx(t), "w1", sessiond.OutboxAttempt{ID: m.ID, At: at(time.Minute), Status: sessiond.OutboxDelivered})
		if !errors.Is(err, sessiond.ErrLeaseLost) {
			t.Errorf("got %v, want ErrLeaseLost", err)
		}
	})

	t.Run("concurrent claimers never get the same message", func(t *testing.T) {
		s := openOutbox(t, open)
		const n, workers = 120, 8
		var msgs []*sessiond.OutboxMessage
		for i := range n {
			msgs = append(msgs, newMessage(fmt.Sprintf("t%d", i%7), at(time.Duration(i)*time.Millisecond)))
		}
		mustOK(t, s.InsertOutbox(ctx(t), msgs...), "InsertOutbox")
		var (
			mu    sync.Mutex
			count = map[string]int{}
			wg    sync.WaitGroup
		)
		for w := range workers {
			wg.Go(func() {
				for {
					got, err := s.ClaimOutbox(ctx(t), sessiond.OutboxClaim{Owner: fmt.Sprintf("w%d", w), Now: at(time.Minute), Lease: time.Hour, Limit: 3})
					if err != nil {
						t.Errorf("ClaimOutbox: %v", err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, m := range got {
						count[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(count) != n {
			t.Errorf("got %d distinct messages claimed, want %d", len(count), n)
		}
		for id, c := range count {
			if c != 1 {
				t.Errorf("message %s claimed %d times, want 1", id, c)
			}
		}
	})

	t.Run("a retry is recorded with its backoff, a delivery ends the claims", func(t *testing.T) {
		s := openOutbox(t, open)
		m := newMessage("a", t0)
		mustOK(t, s.InsertOutbox(ctx(t), m), "InsertOutbox")
		claim(t, s, "w1", t0, 10)
		mustOK(t, s.RecordOutboxAttempt(ctx(t), "w1", sessiond.OutboxAttempt{ID: m.ID, At: at(time.Second),
			Status: sessiond.OutboxPending, NextAttemptAt: at(30 * time.Second), LastStatus: "HTTP 500"}), "record retry")

		st, err := s.OutboxStats(ctx(t))
		mustOK(t, err, "OutboxStats")
		if st.Pending != 1 || !st.OldestPending.Equal(t0) || !st.NextDue.Equal(at(30*time.Second)) {
			t.Errorf("stats: got %+v, want 1 pending, oldest %v, next due %v", st, t0, at(30*time.Second))
		}
		wantIDs(t, "claim before the backoff", msgIDs(claim(t, s, "w1", at(29*time.Second), 10)), []string{})
		got := claim(t, s, "w2", at(30*time.Second), 10)
		wantIDs(t, "claim after the backoff", msgIDs(got), []string{m.ID})
		if got[0].Attempts != 1 || got[0].LastStatus != "HTTP 500" || !got[0].LastAttemptAt.Equal(at(time.Second)) || got[0].LastAttemptAt.Location() != time.UTC {
			t.Errorf("claimed after a retry: got attempts %d, last %q at %v, want 1, HTTP 500 at %v",
				got[0].Attempts, got[0].LastStatus, got[0].LastAttemptAt, at(time.Second))
		}
		mustOK(t, s.RecordOutboxAttempt(ctx(t), "w2", sessiond.OutboxAttempt{ID: m.ID, At: at(31 * time.Second),
			Status: sessiond.OutboxDelivered, LastStatus: "HTTP 204"}), "record delivery")
		wantIDs(t, "claim after delivery", msgIDs(claim(t, s, "w1", at(day), 10)), []string{})
		d := deliveries(t, s, "a")
		want := sessiond.Delivery{EventID: m.EventID, Status: sessiond.OutboxDelivered, Attempts: 2, LastAttemptAt: at(31 * time.Second), LastStatus: "HTTP 204"}
		if len(d) != 1 || d[0] != want {
			t.Errorf("deliveries: got %+v, want [%+v]", d, want)
		}
		st, err = s.OutboxStats(ctx(t))
		mustOK(t, err, "OutboxStats")
		if st != (sessiond.OutboxStats{}) {
			t.Errorf("stats with nothing pending: got %+v, want zero", st)
		}
	})

	t.Run("an expired message is never claimed, and the sweep fails it", func(t *testing.T) {
		s := openOutbox(t, open)
		ex, ok := s.(interface {
			ExpireOutbox(ctx context.Context, now time.Time, limit int) (int, error)
		})
		if !ok {
			t.Fatalf("store has no ExpireOutbox")
		}
		leased, expiring, forever := newMessage("a", t0), newMessage("a", at(time.Millisecond)), newMessage("a", t0)
		expiring.ExpiresAt, leased.ExpiresAt = at(time.Minute), at(time.Minute)
		mustOK(t, s.InsertOutbox(ctx(t), expiring, leased), "InsertOutbox")
		// leased is being sent when its expiry comes: the sweep leaves it
		// to its worker until the lease ends.
		wantIDs(t, "claim before the expiry", msgIDs(claim(t, s, "w1", at(59*time.Second), 1)), []string{leased.ID})
		wantIDs(t, "claim of the other before the expiry", msgIDs(claim(t, s, "w1", at(59*time.Second), 10)), []string{expiring.ID})
		mustOK(t, s.ReleaseOutbox(ctx(t), "w1", []string{expiring.ID}), "ReleaseOutbox")
		mustOK(t, s.InsertOutbox(ctx(t), forever), "InsertOutbox")

		wantIDs(t, "claim at the expiry", msgIDs(claim(t, s, "w2", at(time.Minute), 10)), []string{forever.ID})
		mustOK(t, s.ReleaseOutbox(ctx(t), "w2", []string{forever.ID}), "ReleaseOutbox")
		n, err := ex.ExpireOutbox(ctx(t), at(time.Minute), 10)
		mustOK(t, err, "ExpireOutbox")
		if n != 1 {
			t.Errorf("ExpireOutbox within the lease: got %d, want 1 (the unleased one)", n)
		}
		n, err = ex.ExpireOutbox(ctx(t), at(2*time.Minute), 10)
		mustOK(t, err, "ExpireOutbox")
		if n != 1 {
			t.Errorf("ExpireOutbox after the lease: got %d, want 1", n)
		}
		err = s.RecordOutboxAttempt(ctx(t), "w1", sessiond.OutboxAttempt{ID: leased.ID, At: at(2 * time.Minute), Status: sessiond.OutboxDelivered})
		if !errors.Is(err, sessiond.ErrLeaseLost) {
			t.Errorf("the worker of an expired message records: got %v, want ErrLeaseLost", err)
		}
		var failed int
		for _, d := range deliveries(t, s, "a") {
			switch d.EventID {
			case expiring.EventID, leased.EventID:
				failed++
				if d.Status != sessiond.OutboxFailed || d.LastStatus != sessiond.OutboxExpired || d.Attempts != 0 {
					t.Errorf("expired delivery: got %+v, want failed, %q, 0 attempts", d, sessiond.OutboxExpired)
				}
			case forever.EventID:
				if d.Status != sessiond.OutboxPending {
					t.Errorf("delivery without expiry: got %+v, want pending", d)
				}
			}
		}
		if failed != 2 {
			t.Errorf("expired deliveries listed: got %d, want 2", failed)
		}
		wantIDs(t, "claim after the sweep", msgIDs(claim(t, s, "w2", at(time.Hour), 10)), []string{forever.ID})
	})

	t.Run("stats count pending mail apart", func(t *testing.T) {
		s := openOutbox(t, open)
		m := newMessage("a@example.com", t0)
		m.Channel = sessiond.ChannelMail
		mustOK(t, s.InsertOutbox(ctx(t), m, newMessage("a", t0), newMessage("b", t0)), "InsertOutbox")
		st, err := s.OutboxStats(ctx(t))
		mustOK(t, err, "OutboxStats")
		if st.Pending != 3 || st.PendingMail != 1 {
			t.Errorf("stats: got %+v, want 3 pending, 1 of them mail", st)
		}
	})

	t.Run("released messages are due again at once", func(t *testing.T) {
		s := openOutbox(t, open)
		m := newMessage("a", t0)
		mustOK(t, s.InsertOutbox(ctx(t), m), "InsertOutbox")
		claim(t, s, "w1", t0, 10)
		mustOK(t, s.ReleaseOutbox(ctx(t), "w2", []string{m.ID}), "ReleaseOutbox by another")
		wantIDs(t, "claim after another's release", msgIDs(claim(t, s, "w2", t0, 10)), []string{})
		mustOK(t, s.ReleaseOutbox(ctx(t), "w1", []string{m.ID}), "ReleaseOutbox")
		wantIDs(t, "claim after release", msgIDs(claim(t, s, "w2", t0, 10)), []string{m.ID})
	})

	t.Run("redeliver", func(t *testing.T) {
		s := openOutbox(t, open)
		delivered, failed, pending := newMessage("a", t0), newMessage("a", t0), newMessage("a", at(time.Hour))
		mustOK(t, s.InsertOutbox(ctx(t), delivered, failed, pending), "InsertOutbox")
		claim(t, s, "w1", t0, 10)
		mustOK(t, s.RecordOutboxAttempt(ctx(t), "w1", sessiond.OutboxAttempt{ID: delivered.ID, At: t0, Status: sessiond.OutboxDelivered}), "record")
		mustOK(t, s.RecordOutboxAttempt(ctx(t), "w1", sessiond.OutboxAttempt{ID: failed.ID, At: t0, Status: sessiond.OutboxFailed, LastStatus: "timeout"}), "record")

		for _, m := range []*sessiond.OutboxMessage{delivered, failed, pending} {
			mustOK(t, s.RedeliverOutbox(ctx(t), sessiond.ChannelWebhook, "a", m.EventID, at(time.Minute)), "RedeliverOutbox")
		}
		got := claim(t, s, "w2", at(time.Minute), 10)
		wantIDs(t, "claim after redelivery", sorted(msgIDs(got)), sorted([]string{delivered.ID, failed.ID}))
		for _, m := range got {
			if m.Status != sessiond.OutboxPending || m.Attempts != 0 {
				t.Errorf("redelivered %s: got status %s, attempts %d, want pending, 0", m.ID, m.Status, m.Attempts)
			}
		}
		wantCode(t, s.RedeliverOutbox(ctx(t), sessiond.ChannelWebhook, "a", sessiond.NewID(), t0), sessiond.CodeNotFound)
		wantCode(t, s.RedeliverOutbox(ctx(t), sessiond.ChannelWebhook, "b", delivered.EventID, t0), sessiond.CodeNotFound)
	})

	t.Run("one delivery per channel, target and event", func(t *testing.T) {
		s := openOutbox(t, open)
		m := newMessage("a", t0)
		mustOK(t, s.InsertOutbox(ctx(t), m), "InsertOutbox")
		again := *m
		again.ID = sessiond.NewID()
		wantCode(t, s.InsertOutbox(ctx(t), &again), sessiond.CodeInvalidRequest)
		other := again
		other.Target = "b"
		mustOK(t, s.InsertOutbox(ctx(t), &other), "InsertOutbox to another target")
	})

	t.Run("events and endpoints", func(t *testing.T) {
		s := openOutbox(t, open)
		e := &sessiond.Event{ID: sessiond.NewID(), Type: sessiond.EventSessionEnded, OccurredAt: t0, UserID: "u", Data: map[string]any{"reason": sessiond.EndAdmin}}
		mustOK(t, s.InsertEvent(ctx(t), e), "InsertEvent")
		wantCode(t, s.InsertEvent(ctx(t), e), sessiond.CodeInvalidRequest)
		mustOK(t, s.InsertEvent(ctx(t), &sessiond.Event{ID: sessiond.NewID(), Type: sessiond.EventUserCreated, OccurredAt: t0}), "InsertEvent without data")

		w := &sessiond.WebhookEndpoint{ID: sessiond.NewID(), URL: "https://example.com/hook", Events: []string{sessiond.EventUserCreated, sessiond.EventSessionEnded}, Secret: "whsec_x", CreatedAt: t0}
		mustOK(t, s.CreateWebhookEndpoint(ctx(t), w), "CreateWebhookEndpoint")
		got, err := s.WebhookEndpoint(ctx(t), w.ID)
		mustOK(t, err, "WebhookEndpoint")
		if got.URL != w.URL || !slices.Equal(got.Events, w.Events) || got.Secret != w.Secret || !got.CreatedAt.Equal(t0) {
			t.Errorf("endpoint: got %+v, want %+v", got, w)
		}
		_, err = s.WebhookEndpoint(ctx(t), sessiond.NewID())
		wantCode(t, err, sessiond.CodeNotFound)
	})
}

func deliveries(t *testing.T, s outboxStore, target string) []sessiond.Delivery {
	t.Helper()
	d, err := s.WebhookDeliveries(ctx(t), target, 100)
	mustOK(t, err, "WebhookDeliveries")
	return d
}
