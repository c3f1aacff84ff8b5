package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sessiond/sessiond"
)

var (
	_ sessiond.OutboxStore = (*DB)(nil)
	_ sessiond.EventStore  = (*DB)(nil)
)

// outboxColumns is every column of outbox a worker needs, in the order
// scanOutbox reads.
const outboxColumns = `id, channel, target, event_id, payload, status, attempts, next_attempt_at, created_at, last_attempt_at, last_status, expires_at`

func scanOutbox(row interface{ Scan(...any) error }) (sessiond.OutboxMessage, error) {
	var (
		m             sessiond.OutboxMessage
		next, created int64
		last, expires sql.NullInt64
	)
	if err := row.Scan(&m.ID, &m.Channel, &m.Target, &m.EventID, &m.Payload, &m.Status, &m.Attempts,
		&next, &created, &last, &m.LastStatus, &expires); err != nil {
		return m, err
	}
	m.NextAttemptAt, m.CreatedAt, m.LastAttemptAt = fromMicros(next), fromMicros(created), fromNullMicros(last)
	m.ExpiresAt = fromNullMicros(expires)
	return m, nil
}

// InsertOutbox stores msgs, all or none, as pending with no attempts. A
// zero NextAttemptAt means due at CreatedAt.
func (db *DB) InsertOutbox(ctx context.Context, msgs ...*sessiond.OutboxMessage) error {
	return db.Tx(ctx, func(t sessiond.Tx) error { return t.InsertOutbox(msgs...) })
}

// claimOutbox leases due messages in one statement on the single writer, so
// two claims run one after the other and the second no longer sees the
// first's rows as free. The skipped targets come as a JSON array, so that
// the statement stays one constant. The outer WHERE repeats the
// conditions only for symmetry with PostgreSQL, where they matter.
const claimOutbox = `UPDATE outbox SET lease_owner = ?1, lease_until = ?2
WHERE id IN (
	SELECT id FROM outbox
	WHERE status = 'pending' AND next_attempt_at <= ?3 AND (lease_until IS NULL OR lease_until <= ?3)
		AND (expires_at IS NULL OR expires_at > ?3)
		AND target NOT IN (SELECT value FROM json_each(?4))
	ORDER BY next_attempt_at, id
	LIMIT ?5)
AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?3)
RETURNING ` + outboxColumns

// claimOutboxChannels is claimOutbox for the channels in the JSON array
// ?6. It goes through the index on (status, channel, next_attempt_at), so
// that mail waiting for an SMTP server, however much of it, costs a
// webhook claim nothing.
const claimOutboxChannels = `UPDATE outbox SET lease_owner = ?1, lease_until = ?2
WHERE id IN (
	SELECT id FROM outbox
	WHERE status = 'pending' AND channel IN (SELECT value FROM json_each(?6))
		AND next_attempt_at <= ?3 AND (lease_until IS NULL OR lease_until <= ?3)
		AND (expires_at IS NULL OR expires_at > ?3)
		AND target NOT IN (SELECT value FROM json_each(?4))
	ORDER BY next_attempt_at, id
	LIMIT ?5)
AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?3)
RETURNING ` + outboxColumns

// ClaimOutbox leases up to c.Limit due messages to c.Owner until
// c.Now+c.Lease, oldest due first.
func (db *DB) ClaimOutbox(ctx context.Context, c sessiond.OutboxClaim) ([]sessiond.OutboxMessage, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	skip, err := json.Marshal(append([]string{}, c.SkipTargets...))
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	channels, err := json.Marshal(append([]string{}, c.Channels...))
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	now := sessiond.Now(c.Now)
	var rows *sql.Rows
	if len(c.Channels) == 0 {
		rows, err = db.w.QueryContext(ctx, claimOutbox, c.Owner, micros(now.Add(c.Lease)), micros(now), string(skip), c.Limit)
	} else {
		rows, err = db.w.QueryContext(ctx, claimOutboxChannels, c.Owner, micros(now.Add(c.Lease)), micros(now), string(skip), c.Limit, string(channels))
	}
	if err != nil {
		return nil, sessiond.Unavailable("claim outbox", err)
	}
	defer rows.Close()
	var out []sessiond.OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, sessiond.Unavailable("claim outbox", fmt.Errorf("scan outbox: %w", err))
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, sessiond.Unavailable("claim outbox", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, byDue)
	return out, nil
}

func byDue(a, b sessiond.OutboxMessage) int {
	return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
}

const releaseOutbox = `UPDATE outbox SET lease_owner = NULL, lease_until = NULL
WHERE lease_owner = ? AND id IN (SELECT value FROM json_each(?))`

// ReleaseOutbox ends owner's leases on ids, leaving the messages as they were.
func (db *DB) ReleaseOutbox(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("release outbox: %w", err)
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	if _, err := db.w.ExecContext(ctx, releaseOutbox, owner, string(list)); err != nil {
		return sessiond.Unavailable("release outbox", err)
	}
	return nil
}

// recordOutboxAttempt applies an outcome only under the caller's live
// lease; the lease ends with it.
// recordOutboxAttempt erases the payload of a mail that is done with
// (delivered or given up): it holds the link's token, which must not
// outlive its use in a database dump.
const recordOutboxAttempt = `UPDATE outbox
SET status = ?1, attempts = attempts + 1, next_attempt_at = ?2, last_attempt_at = ?3, last_status = ?4,
	lease_owner = NULL, lease_until = NULL,
	payload = CASE WHEN channel = 'mail' AND ?1 <> 'pending' THEN X'' ELSE payload END
WHERE id = ?5 AND lease_owner = ?6 AND lease_until > ?7`

// RecordOutboxAttempt stores the outcome of one attempt; ErrLeaseLost
// unless owner still holds the message's lease at a.At.
func (db *DB) RecordOutboxAttempt(ctx context.Context, owner string, a sessiond.OutboxAttempt) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	at := micros(sessiond.Now(a.At))
	next := at
	if !a.NextAttemptAt.IsZero() {
		next = micros(sessiond.Now(a.NextAttemptAt))
	}
	res, err := db.w.ExecContext(ctx, recordOutboxAttempt, a.Status, next, at, a.LastStatus, a.ID, owner, at)
	if err != nil {
		return sessiond.Unavailable("record outbox attempt", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sessiond.Unavailable("record outbox attempt", err)
	} else if n == 0 {
		return sessiond.ErrLeaseLost
	}
	return nil
}

const outboxStats = `SELECT count(*), count(CASE WHEN channel = 'mail' THEN 1 END), min(created_at), min(next_attempt_at)
FROM outbox WHERE status = 'pending'`

// OutboxStats summarises the pending messages.
func (db *DB) OutboxStats(ctx context.Context) (sessiond.OutboxStats, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	var (
		s            sessiond.OutboxStats
		oldest, next sql.NullInt64
	)
	if err := db.r.QueryRowContext(ctx, outboxStats).Scan(&s.Pending, &s.PendingMail, &oldest, &next); err != nil {
		return s, sessiond.Unavailable("outbox stats", err)
	}
	s.OldestPending, s.NextDue = fromNullMicros(oldest), fromNullMicros(next)
	return s, nil
}

// expireOutbox fails pending messages whose expiry has come, erasing the
// payload (a mail's token) with the row's last words. A message under a
// live lease is being sent right now; it is left to its worker, whose
// sender refuses an expired token itself, and to the next sweep.
const expireOutbox = `UPDATE outbox
SET status = 'failed', last_status = 'expired', last_attempt_at = ?1, payload = X'',
	lease_owner = NULL, lease_until = NULL
WHERE id IN (
	SELECT id FROM outbox
	WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?1
		AND (lease_until IS NULL OR lease_until <= ?1)
	LIMIT ?2)`

// ExpireOutbox fails at most limit pending messages expired by now.
func (db *DB) ExpireOutbox(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, expireOutbox, micros(sessiond.Now(now)), limit)
	if err != nil {
		return 0, storeError("expire outbox", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError("expire outbox", err)
	}
	return int(n), nil
}

// InsertEvent stores e.
func (db *DB) InsertEvent(ctx context.Context, e *sessiond.Event) error {
	return db.Tx(ctx, func(t sessiond.Tx) error { return t.InsertEvent(e) })
}

// listEvents pages through events oldest first; the cursor is an event id,
// and the events after it are those later in (occurred_at, id) order. An
// unknown cursor compares as NULL and selects nothing.
const listEvents = `SELECT id, type, occurred_at, user_id, session_id, ip, user_agent, data FROM events
WHERE (?1 = '' OR user_id = ?1) AND (?2 = '' OR type = ?2)
	AND (?3 = '' OR (occurred_at, id) > (SELECT occurred_at, id FROM events WHERE id = ?3))
ORDER BY occurred_at, id
LIMIT ?4`

// Events lists events oldest first.
func (db *DB) Events(ctx context.Context, q sessiond.EventQuery) ([]sessiond.Event, error) {
	if q.Limit <= 0 {
		return []sessiond.Event{}, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, listEvents, q.UserID, q.Type, q.After, q.Limit)
	if err != nil {
		return nil, storeError("list events", err)
	}
	defer rows.Close()
	out := []sessiond.Event{}
	for rows.Next() {
		var (
			e    sessiond.Event
			at   int64
			data string
		)
		if err := rows.Scan(&e.ID, &e.Type, &at, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &data); err != nil {
			return nil, storeError("list events", err)
		}
		e.OccurredAt = fromMicros(at)
		if data != "{}" {
			if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
				return nil, storeError("list events", fmt.Errorf("decode data: %w", err))
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list events", err)
	}
	return out, nil
}

const createWebhookEndpoint = `INSERT INTO webhook_endpoints (id, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?)`

// CreateWebhookEndpoint stores w.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, w *sessiond.WebhookEndpoint) error {
	events, err := json.Marshal(append([]string{}, w.Events...))
	if err != nil {
		return fmt.Errorf("create webhook endpoint: %w", err)
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	_, err = db.w.ExecContext(ctx, createWebhookEndpoint, w.ID, w.URL, string(events), w.Secret, micros(w.CreatedAt))
	if isUniqueViolation(err) {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "webhook endpoint %s exists", w.ID)
	}
	if err != nil {
		return sessiond.Unavailable("create webhook endpoint", err)
	}
	return nil
}

const webhookEndpointByID = `SELECT id, url, events, secret, created_at FROM webhook_endpoints WHERE id = ?`

// WebhookEndpoint returns endpoint id. CodeNotFound.
func (db *DB) WebhookEndpoint(ctx context.Context, id string) (*sessiond.WebhookEndpoint, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	var (
		w       sessiond.WebhookEndpoint
		events  string
		created int64
	)
	err := db.r.QueryRowContext(ctx, webhookEndpointByID, id).Scan(&w.ID, &w.URL, &events, &w.Secret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "webhook endpoint not found")
	}
	if err != nil {
		return nil, sessiond.Unavailable("get webhook endpoint", err)
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, sessiond.Unavailable("get webhook endpoint", fmt.Errorf("decode events: %w", err))
	}
	w.CreatedAt = fromMicros(created)
	return &w, nil
}

const webhookDeliveries = `SELECT event_id, status, attempts, last_attempt_at, last_status FROM outbox
WHERE channel = 'webhook' AND target = ? ORDER BY created_at DESC, id DESC LIMIT ?`

// WebhookDeliveries lists endpoint id's newest deliveries, newest first.
func (db *DB) WebhookDeliveries(ctx context.Context, id string, limit int) ([]sessiond.Delivery, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, webhookDeliveries, id, limit)
	if err != nil {
		return nil, sessiond.Unavailable("list webhook deliveries", err)
	}
	defer rows.Close()
	var out []sessiond.Delivery
	for rows.Next() {
		var (
			d    sessiond.Delivery
			last sql.NullInt64
		)
		if err := rows.Scan(&d.EventID, &d.Status, &d.Attempts, &last, &d.LastStatus); err != nil {
			return nil, sessiond.Unavailable("list webhook deliveries", fmt.Errorf("scan delivery: %w", err))
		}
		d.LastAttemptAt = fromNullMicros(last)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, sessiond.Unavailable("list webhook deliveries", err)
	}
	return out, nil
}

const (
	// redeliverOutbox gives a finished delivery a fresh schedule.
	redeliverOutbox = `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,
	lease_owner = NULL, lease_until = NULL
WHERE channel = ? AND target = ? AND event_id = ? AND status IN ('delivered', 'failed')`

	outboxExists = `SELECT 1 FROM outbox WHERE channel = ? AND target = ? AND event_id = ?`
)

// RedeliverOutbox sets a finished delivery back to pending, due at now.
// CodeNotFound if there is none.
func (db *DB) RedeliverOutbox(ctx context.Context, channel, target, eventID string, now time.Time) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return sessiond.Unavailable("redeliver", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, redeliverOutbox, micros(sessiond.Now(now)), channel, target, eventID)
	if err != nil {
		return sessiond.Unavailable("redeliver", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return sessiond.Unavailable("redeliver", err)
	} else if n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, outboxExists, channel, target, eventID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return sessiond.Errorf(sessiond.CodeNotFound, "delivery not found")
		}
		if err != nil {
			return sessiond.Unavailable("redeliver", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return sessiond.Unavailable("redeliver", fmt.Errorf("commit: %w", err))
	}
	return nil
}

const pendingMail = `SELECT ` + outboxColumns + ` FROM outbox
WHERE channel = 'mail' AND status = 'pending' ORDER BY created_at, id LIMIT ?`

// PendingMail lists mail still waiting, oldest first.
func (db *DB) PendingMail(ctx context.Context, limit int) ([]sessiond.OutboxMessage, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, pendingMail, limit)
	if err != nil {
		return nil, sessiond.Unavailable("list pending mail", err)
	}
	defer rows.Close()
	var out []sessiond.OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, sessiond.Unavailable("list pending mail", fmt.Errorf("scan outbox: %w", err))
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, sessiond.Unavailable("list pending mail", err)
	}
	return out, nil
}
