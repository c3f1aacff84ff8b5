package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sessiond/sessiond"
)

var _ sessiond.AdminStore = (*DB)(nil)

const (
	eventExists = `SELECT 1 FROM events WHERE id = ?`
)

// ListEvents is Events with an unknown cursor refused rather than
// selecting nothing, so that a poller whose cursor was swept knows to start
// again.
func (db *DB) ListEvents(ctx context.Context, q sessiond.EventQuery) ([]sessiond.Event, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	if q.After != "" {
		var one int
		err := db.r.QueryRowContext(ctx, eventExists, q.After).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "no event %q to list after: it never existed or is older than the retention", q.After)
		}
		if err != nil {
			return nil, storeError("list events", err)
		}
	}
	return db.Events(ctx, q)
}

const webhookEndpoints = `SELECT id, url, events, secret, created_at FROM webhook_endpoints ORDER BY created_at, id`

// WebhookEndpoints lists every endpoint, oldest first.
func (db *DB) WebhookEndpoints(ctx context.Context) ([]sessiond.WebhookEndpoint, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, webhookEndpoints)
	if err != nil {
		return nil, storeError("list webhook endpoints", err)
	}
	defer rows.Close()
	var out []sessiond.WebhookEndpoint
	for rows.Next() {
		var (
			w       sessiond.WebhookEndpoint
			events  string
			created int64
		)
		if err := rows.Scan(&w.ID, &w.URL, &events, &w.Secret, &created); err != nil {
			return nil, storeError("list webhook endpoints", fmt.Errorf("scan endpoint: %w", err))
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return nil, storeError("list webhook endpoints", fmt.Errorf("decode events: %w", err))
		}
		w.CreatedAt = fromMicros(created)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list webhook endpoints", err)
	}
	return out, nil
}

const (
	deleteWebhookEndpoint = `DELETE FROM webhook_endpoints WHERE id = ?`
	deletePendingOutbox   = `DELETE FROM outbox WHERE channel = 'webhook' AND target = ? AND status = 'pending'`
)

// DeleteWebhookEndpoint removes the endpoint and its pending deliveries in
// one transaction; finished ones stay until the retention sweep, as a
// record. CodeNotFound.
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return storeError("delete webhook endpoint", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, deleteWebhookEndpoint, id)
	if err != nil {
		return storeError("delete webhook endpoint", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return storeError("delete webhook endpoint", err)
	} else if n == 0 {
		return sessiond.Errorf(sessiond.CodeNotFound, "webhook endpoint not found")
	}
	if _, err := tx.ExecContext(ctx, deletePendingOutbox, id); err != nil {
		return storeError("delete webhook endpoint", err)
	}
	if err := tx.Commit(); err != nil {
		return storeError("delete webhook endpoint", fmt.Errorf("commit: %w", err))
	}
	return nil
}

const (
	deleteEventsBefore = `DELETE FROM events WHERE id IN (
	SELECT id FROM events WHERE occurred_at < ? ORDER BY occurred_at, id LIMIT ?)`
	deleteFinishedOutboxBefore = `DELETE FROM outbox WHERE id IN (
	SELECT id FROM outbox WHERE status IN ('delivered', 'failed') AND created_at < ? LIMIT ?)`
)

// DeleteEventsBefore deletes at most limit events older than cutoff.
func (db *DB) DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return db.deleteBatch(ctx, "delete old events", deleteEventsBefore, cutoff, limit)
}

// DeleteFinishedOutboxBefore deletes at most limit finished outbox
// messages created before cutoff.
func (db *DB) DeleteFinishedOutboxBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return db.deleteBatch(ctx, "delete old outbox messages", deleteFinishedOutboxBefore, cutoff, limit)
}

func (db *DB) deleteBatch(ctx context.Context, op, query string, cutoff time.Time, limit int) (int, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, query, micros(sessiond.Now(cutoff)), limit)
	if err != nil {
		return 0, storeError(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError(op, err)
	}
	return int(n), nil
}

const (
	allWebhookSecrets   = `SELECT id, secret FROM webhook_endpoints ORDER BY id`
	updateWebhookSecret = `UPDATE webhook_endpoints SET secret = ? WHERE id = ?`
)

// ResealWebhookSecrets hands every endpoint's stored secret to reseal and
// stores what it returns.
func (db *DB) ResealWebhookSecrets(ctx context.Context, reseal func(sessiond.StoredSecret) ([]byte, error)) (int, error) {
	return db.reseal(ctx, "reseal webhook secrets", reseal,
		sealedColumn{kind: sessiond.SecretKindWebhook, sel: allWebhookSecrets, upd: updateWebhookSecret, text: true})
}

const (
	createAdminKey = `INSERT INTO admin_keys (name, hash, created_at) VALUES (?, ?, ?)`
	adminKeyCols   = `name, hash, created_at, revoked_at, last_used_at`
	adminKeys      = `SELECT ` + adminKeyCols + ` FROM admin_keys ORDER BY created_at, name`
	adminKeyByHash = `SELECT ` + adminKeyCols + ` FROM admin_keys WHERE hash = ?`
	revokeAdminKey = `UPDATE admin_keys SET revoked_at = coalesce(revoked_at, ?) WHERE name = ?`
	touchAdminKey  = `UPDATE admin_keys SET last_used_at = ?1 WHERE name = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`
)

// CreateAdminKey stores k. CodeInvalidRequest if the name is taken.
func (db *DB) CreateAdminKey(ctx context.Context, k *sessiond.AdminKey) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	_, err := db.w.ExecContext(ctx, createAdminKey, k.Name, k.Hash, micros(sessiond.Now(k.CreatedAt)))
	if isUniqueViolation(err) {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "an admin key named %q exists (revoked keys keep their names)", k.Name)
	}
	return storeError("create admin key", err)
}

func scanAdminKey(row interface{ Scan(...any) error }) (sessiond.AdminKey, error) {
	var (
		k             sessiond.AdminKey
		created       int64
		revoked, used sql.NullInt64
	)
	if err := row.Scan(&k.Name, &k.Hash, &created, &revoked, &used); err != nil {
		return k, err
	}
	k.CreatedAt, k.RevokedAt, k.LastUsedAt = fromMicros(created), fromNullMicros(revoked), fromNullMicros(used)
	return k, nil
}

// AdminKeys lists every key, oldest first.
func (db *DB) AdminKeys(ctx context.Context) ([]sessiond.AdminKey, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, adminKeys)
	if err != nil {
		return nil, storeError("list admin keys", err)
	}
	defer rows.Close()
	var out []sessiond.AdminKey
	for rows.Next() {
		k, err := scanAdminKey(rows)
		if err != nil {
			return nil, storeError("list admin keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list admin keys", err)
	}
	return out, nil
}

// AdminKeyByHash returns the key with that hash. CodeNotFound.
func (db *DB) AdminKeyByHash(ctx context.Context, hash []byte) (*sessiond.AdminKey, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	k, err := scanAdminKey(db.r.QueryRowContext(ctx, adminKeyByHash, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "admin key not found")
	}
	if err != nil {
		return nil, storeError("get admin key", err)
	}
	return &k, nil
}

// RevokeAdminKey revokes the key named name. CodeNotFound.
func (db *DB) RevokeAdminKey(ctx context.Context, name string, now time.Time) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, revokeAdminKey, micros(sessiond.Now(now)), name)
	if err != nil {
		return storeError("revoke admin key", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return storeError("revoke admin key", err)
	} else if n == 0 {
		return sessiond.Errorf(sessiond.CodeNotFound, "no admin key named %q", name)
	}
	return nil
}

// TouchAdminKey moves the key's last use forward to now.
func (db *DB) TouchAdminKey(ctx context.Context, name string, now time.Time) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	_, err := db.w.ExecContext(ctx, touchAdminKey, micros(sessiond.Now(now)), name)
	return storeError("touch admin key", err)
}
