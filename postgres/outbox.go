package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

var (
	_ sessiond.OutboxStore = (*DB)(nil)
	_ sessiond.EventStore  = (*DB)(nil)
)

// outboxColumns is every column of outbox a worker needs, in the order
// scanOutbox reads.
const outboxColumns = `id, channel, target, event_id, payload, status, attempts, next_attempt_at, created_at, last_attempt_at, last_status, expires_at`

func scanOutbox(row pgx.CollectableRow) (sessiond.OutboxMessage, error) {
	var (
		m             sessiond.OutboxMessage
		last, expires *time.Time
	)
	if err := row.Scan(&m.ID, &m.Channel, &m.Target, &m.EventID, &m.Payload, &m.Status, &m.Attempts,
		&m.NextAttemptAt, &m.CreatedAt, &last, &m.LastStatus, &expires); err != nil {
		return m, err
	}
	m.NextAttemptAt, m.CreatedAt, m.LastAttemptAt = sessiond.Now(m.NextAttemptAt), sessiond.Now(m.CreatedAt), fromNull(last)
	m.ExpiresAt = fromNull(expires)
	return m, nil
}

// InsertOutbox stores msgs, all or none, as pending with no attempts. A
// zero NextAttemptAt means due at CreatedAt.
func (db *DB) InsertOutbox(ctx context.Context, msgs ...*sessiond.OutboxMessage) error {
	if err := db.Tx(ctx, func(t sessiond.Tx) error { return t.InsertOutbox(msgs...) }); err != nil {
		return err
	}
	for _, m := range msgs {
		if m.NextAttemptAt.IsZero() {
			m.NextAttemptAt = m.CreatedAt
		}
		m.Status, m.Attempts, m.NextAttemptAt = sessiond.OutboxPending, 0, sessiond.Now(m.NextAttemptAt)
	}
	return nil
}

// claimOutbox leases due messages. FOR UPDATE SKIP LOCKED makes concurrent
// claims pass over each other's rows instead of waiting for them; a row
// another claim leased and committed after this statement's snapshot is
// re-checked against the WHERE once locked (READ COMMITTED's recheck of an
// updated row), so its fresh lease excludes it. The due rows are a
// MATERIALIZED CTE rather than a bare IN (subquery): the planner may run a
// subquery once per outer row (a semi-join), and each run locks another
// LIMIT rows, so a claim for one message could lease several. The outer
// WHERE states the conditions again so that no plan can lease a row that
// is no longer free.
const claimOutbox = `WITH due AS MATERIALIZED (
	SELECT id FROM outbox
	WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
		AND (expires_at IS NULL OR expires_at > $3)
		AND target <> ALL($4::text[])
	ORDER BY next_attempt_at, id
	LIMIT $5
	FOR UPDATE SKIP LOCKED)
UPDATE outbox SET lease_owner = $1, lease_until = $2
WHERE id IN (SELECT id FROM due)
AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $3)
RETURNING ` + outboxColumns

// claimOutboxChannels is claimOutbox for the channels $6. It can go
// through the index on (status, channel, next_attempt_at), so that mail
// waiting for an SMTP server, however much of it, costs a webhook claim
// nothing.
const claimOutboxChannels = `WITH due AS MATERIALIZED (
	SELECT id FROM outbox
	WHERE status = 'pending' AND channel = ANY($6::text[])
		AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
		AND (expires_at IS NULL OR expires_at > $3)
		AND target <> ALL($4::text[])
	ORDER BY next_attempt_at, id
	LIMIT $5
	FOR UPDATE SKIP LOCKED)
UPDATE outbox SET lease_owner = $1, lease_until = $2
WHERE id IN (SELECT id FROM due)
AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $3)
RETURNING ` + outboxColumns

// ClaimOutbox leases up to c.Limit due messages to c.Owner until
// c.Now+c.Lease, oldest due first.
func (db *DB) ClaimOutbox(ctx context.Context, c sessiond.OutboxClaim) ([]sessiond.OutboxMessage, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	now := sessiond.Now(c.Now)
	skip := append([]string{}, c.SkipTargets...)
	channels := append([]string{}, c.Channels...)
	var out []sessiond.OutboxMessage
	err := retry(ctx, func() error {
		query, args := claimOutbox, []any{c.Owner, now.Add(c.Lease), now, skip, c.Limit}
		if len(channels) > 0 {
			query, args = claimOutboxChannels, append(args, channels)
		}
		rows, err := db.pool.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("claim outbox: %w", err)
		}
		out, err = pgx.CollectRows(rows, scanOutbox)
		return err
	})
	if err != nil {
		return nil, storeError("claim outbox", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b sessiond.OutboxMessage) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

const releaseOutbox = `UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND id = ANY($2)`

// ReleaseOutbox ends owner's leases on ids, leaving the messages as they were.
func (db *DB) ReleaseOutbox(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, releaseOutbox, owner, ids)
	return storeError("release outbox", err)
}

// recordOutboxAttempt applies an outcome only under the caller's live
// lease; the lease ends with it.
// recordOutboxAttempt erases the payload of a mail that is done with
// (delivered or given up): it holds the link's token, which must not
// outlive its use in a database dump.
const recordOutboxAttempt = `UPDATE outbox
SET status = $1, attempts = attempts + 1, next_attempt_at = $2, last_attempt_at = $3, last_status = $4,
	lease_owner = NULL, lease_until = NULL,
	payload = CASE WHEN channel = 'mail' AND $1::text <> 'pending' THEN ''::bytea ELSE payload END
WHERE id = $5 AND lease_owner = $6 AND lease_until > $3`

// RecordOutboxAttempt stores the outcome of one attempt; ErrLeaseLost
// unless owner still holds the message's lease at a.At.
func (db *DB) RecordOutboxAttempt(ctx context.Context, owner string, a sessiond.OutboxAttempt) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	at := sessiond.Now(a.At)
	next := at
	if !a.NextAttemptAt.IsZero() {
		next = sessiond.Now(a.NextAttemptAt)
	}
	tag, err := db.exec(ctx, recordOutboxAttempt, a.Status, next, at, a.LastStatus, a.ID, owner)
	if err != nil {
		return storeError("record outbox attempt", err)
	}
	if tag.RowsAffected() == 0 {
		return sessiond.ErrLeaseLost
	}
	return nil
}

const outboxStats = `SELECT count(*), count(*) FILTER (WHERE channel = 'mail'), min(created_at), min(next_attempt_at)
FROM outbox WHERE status = 'pending'`

// OutboxStats summarises the pending messages.
func (db *DB) OutboxStats(ctx context.Context) (sessiond.OutboxStats, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	var (
		s            sessiond.OutboxStats
		oldest, next *time.Time
	)
	if err := db.pool.QueryRow(ctx, outboxStats).Scan(&s.Pending, &s.PendingMail, &oldest, &next); err != nil {
		return s, storeError("outbox stats", err)
	}
	s.OldestPending, s.NextDue = fromNull(oldest), fromNull(next)
	return s, nil
}

// expireOutbox fails pending messages whose expiry has come, erasing the
// payload (a mail's token) with the row's last words. A message under a
// live lease is being sent right now; it is left to its worker, whose
// sender refuses an expired token itself, and to the next sweep. SKIP
// LOCKED lets the sweepers of several instances, and the claims, pass
// over each other's rows instead of queueing behind them.
const expireOutbox = `WITH due AS MATERIALIZED (
	SELECT id FROM outbox
	WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $1
		AND (lease_until IS NULL OR lease_until <= $1)
	LIMIT $2
	FOR UPDATE SKIP LOCKED)
UPDATE outbox
SET status = 'failed', last_status = 'expired', last_attempt_at = $1, payload = ''::bytea,
	lease_owner = NULL, lease_until = NULL
WHERE id IN (SELECT id FROM due)
AND status = 'pending' AND (lease_until IS NULL OR lease_until <= $1)`

// ExpireOutbox fails at most limit pending messages expired by now.
func (db *DB) ExpireOutbox(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, expireOutbox, "expire outbox", now, limit)
}

// InsertEvent stores e.
func (db *DB) InsertEvent(ctx context.Context, e *sessiond.Event) error {
	return db.Tx(ctx, func(t sessiond.Tx) error { return t.InsertEvent(e) })
}

// listEvents pages through events oldest first; the cursor is an event id,
// and the events after it are those later in (occurred_at, id) order. An
// unknown cursor compares as NULL and selects nothing.
const listEvents = `SELECT id, type, occurred_at, user_id, session_id, ip, user_agent, data FROM events
WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR type = $2)
	AND ($3 = '' OR (occurred_at, id) > (SELECT occurred_at, id FROM events WHERE id = $3))
ORDER BY occurred_at, id
LIMIT $4`

// Events lists events oldest first.
func (db *DB) Events(ctx context.Context, q sessiond.EventQuery) ([]sessiond.Event, error) {
	if q.Limit <= 0 {
		return []sessiond.Event{}, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, listEvents, q.UserID, q.Type, q.After, q.Limit)
	if err != nil {
		return nil, storeError("list events", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.Event, error) {
		var (
			e    sessiond.Event
			data []byte
		)
		if err := row.Scan(&e.ID, &e.Type, &e.OccurredAt, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &data); err != nil {
			return e, err
		}
		e.OccurredAt = sessiond.Now(e.OccurredAt)
		if string(data) != "{}" {
			if err := json.Unmarshal(data, &e.Data); err != nil {
				return e, fmt.Errorf("decode data: %w", err)
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, storeError("list events", err)
	}
	if events == nil {
		events = []sessiond.Event{}
	}
	return events, nil
}

const createWebhookEndpoint = `INSERT INTO webhook_endpoints (id, url, events, secret, created_at) VALUES ($1, $2, $3, $4, $5)`

// CreateWebhookEndpoint stores w.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, w *sessiond.WebhookEndpoint) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, createWebhookEndpoint, w.ID, w.URL, append([]string{}, w.Events...), w.Secret, sessiond.Now(w.CreatedAt))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "webhook endpoint %s exists", w.ID)
	}
	return storeError("create webhook endpoint", err)
}

const webhookEndpointByID = `SELECT id, url, events, secret, created_at FROM webhook_endpoints WHERE id = $1`

// WebhookEndpoint returns endpoint id. CodeNotFound.
func (db *DB) WebhookEndpoint(ctx context.Context, id string) (*sessiond.WebhookEndpoint, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	var w sessiond.WebhookEndpoint
	err := db.pool.QueryRow(ctx, webhookEndpointByID, id).Scan(&w.ID, &w.URL, &w.Events, &w.Secret, &w.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "webhook endpoint not found")
	}
	if err != nil {
		return nil, storeError("get webhook endpoint", err)
	}
	w.CreatedAt = sessiond.Now(w.CreatedAt)
	return &w, nil
}

const webhookDeliveries = `SELECT event_id, status, attempts, last_attempt_at, last_status FROM outbox
WHERE channel = 'webhook' AND target = $1 ORDER BY created_at DESC, id DESC LIMIT $2`

// WebhookDeliveries lists endpoint id's newest deliveries, newest first.
func (db *DB) WebhookDeliveries(ctx context.Context, id string, limit int) ([]sessiond.Delivery, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, webhookDeliveries, id, limit)
	if err != nil {
		return nil, storeError("list webhook deliveries", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.Delivery, error) {
		var (
			d    sessiond.Delivery
			last *time.Time
		)
		err := row.Scan(&d.EventID, &d.Status, &d.Attempts, &last, &d.LastStatus)
		d.LastAttemptAt = fromNull(last)
		return d, err
	})
	if err != nil {
		return nil, storeError("list webhook deliveries", err)
	}
	return out, nil
}

const (
	// redeliverOutbox gives a finished delivery a fresh schedule.
	redeliverOutbox = `UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1,
	lease_owner = NULL, lease_until = NULL
WHERE channel = $2 AND target = $3 AND event_id = $4 AND status IN ('delivered', 'failed')`

	outboxExists = `SELECT 1 FROM outbox WHERE channel = $1 AND target = $2 AND event_id = $3`
)

// RedeliverOutbox sets a finished delivery back to pending, due at now.
// CodeNotFound if there is none.
func (db *DB) RedeliverOutbox(ctx context.Context, channel, target, eventID string, now time.Time) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, redeliverOutbox, sessiond.Now(now), channel, target, eventID)
		if err != nil {
			return fmt.Errorf("reset delivery: %w", err)
		}
		if tag.RowsAffected() > 0 {
			return nil
		}
		var one int
		err = tx.QueryRow(ctx, outboxExists, channel, target, eventID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return sessiond.Errorf(sessiond.CodeNotFound, "delivery not found")
		}
		return err
	})
	return storeError("redeliver", err)
}

const pendingMail = `SELECT ` + outboxColumns + ` FROM outbox
WHERE channel = 'mail' AND status = 'pending' ORDER BY created_at, id LIMIT $1`

// PendingMail lists mail still waiting, oldest first.
func (db *DB) PendingMail(ctx context.Context, limit int) ([]sessiond.OutboxMessage, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, pendingMail, limit)
	if err != nil {
		return nil, storeError("list pending mail", err)
	}
	out, err := pgx.CollectRows(rows, scanOutbox)
	if err != nil {
		return nil, storeError("list pending mail", err)
	}
	return out, nil
}
