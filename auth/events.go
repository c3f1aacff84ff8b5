package auth

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sessiond/sessiond"
)

// Origin is who caused a change, as the change's events record it: the
// client's address and user agent where a request had them, and for a
// change made through the admin API the name of the key that made it.
type Origin struct {
	IP        string
	UserAgent string
	Actor     string
}

// event is an event of o: ip and user agent from o, data.actor when o is
// an admin call.
func (o Origin) event(typ, userID, sessionID string, data map[string]any) sessiond.Event {
	if o.Actor != "" {
		if data == nil {
			data = map[string]any{}
		}
		data["actor"] = o.Actor
	}
	return sessiond.Event{Type: typ, UserID: userID, SessionID: sessionID, IP: o.IP, UserAgent: o.UserAgent, Data: data}
}

// ended is session.ended for each of ids, for reason.
func (o Origin) ended(tx sessiond.Tx, now time.Time, userID string, ids []string, reason string) error {
	for _, id := range ids {
		if err := record(tx, now, o.event(sessiond.EventSessionEnded, userID, id, map[string]any{"reason": reason})); err != nil {
			return err
		}
	}
	return nil
}

// endAll deletes every session of the user in tx and records a
// session.ended with reason for each; it returns their ids.
func (o Origin) endAll(tx sessiond.Tx, now time.Time, userID, reason string) ([]string, error) {
	ids, err := tx.DeleteUserSessions(userID)
	if err != nil {
		return nil, err
	}
	return ids, o.ended(tx, now, userID, ids, reason)
}

// record writes e, stamped with now and a fresh id, in tx, and fans it out:
// one outbox row for every webhook endpoint subscribed to its type, whose
// payload is the event's JSON, the body of the delivery. Being in the
// change's transaction, the event and its deliveries exist exactly when the
// change committed.
func record(tx sessiond.Tx, now time.Time, e sessiond.Event) error {
	_, err := recordID(tx, now, e)
	return err
}

// recordID is record, returning the event's id, for the outbox rows of
// other channels (mail) that the event causes.
func recordID(tx sessiond.Tx, now time.Time, e sessiond.Event) (string, error) {
	e.ID = sessiond.NewEventID(now)
	e.OccurredAt = now
	if err := tx.InsertEvent(&e); err != nil {
		return "", fmt.Errorf("insert event: %w", err)
	}
	targets, err := tx.WebhookSubscribers(e.Type)
	if err != nil {
		return "", fmt.Errorf("select webhook subscribers: %w", err)
	}
	if len(targets) == 0 {
		return e.ID, nil
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	msgs := make([]*sessiond.OutboxMessage, len(targets))
	for i, target := range targets {
		msgs[i] = &sessiond.OutboxMessage{
			ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook, Target: target,
			EventID: e.ID, Payload: payload, CreatedAt: now,
		}
	}
	if err := tx.InsertOutbox(msgs...); err != nil {
		return "", fmt.Errorf("insert outbox: %w", err)
	}
	return e.ID, nil
}
