package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

var _ sessiond.AdminStore = (*DB)(nil)

const (
	eventExists = `SELECT 1 FROM events WHERE id = $1`
)

// ListEvents is Events with an unknown cursor refused rather than
// selecting nothing, so that a poller whose cursor was swept knows to start
// again.
func (db *DB) ListEvents(ctx context.Context, q sessiond.EventQuery) ([]sessiond.Event, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	if q.After != "" {
		var one int
		err := db.pool.QueryRow(ctx, eventExists, q.After).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
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
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, webhookEndpoints)
	if err != nil {
		return nil, storeError("list webhook endpoints", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.WebhookEndpoint, error) {
		var w sessiond.WebhookEndpoint
		err := row.Scan(&w.ID, &w.URL, &w.Events, &w.Secret, &w.CreatedAt)
		w.CreatedAt = sessiond.Now(w.CreatedAt)
		return w, err
	})
	if err != nil {
		return nil, storeError("list webhook endpoints", err)
	}
	return out, nil
}

const (
	deleteWebhookEndpoint = `DELETE FROM webhook_endpoints WHERE id = $1`
	deletePendingOutbox   = `DELETE FROM outbox WHERE channel = 'webhook' AND target = $1 AND status = 'pending'`
)

// DeleteWebhookEndpoint removes the endpoint and its pending deliveries in
// one transaction; finished ones stay until the retention sweep, as a
// record. CodeNotFound.
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, deleteWebhookEndpoint, id)
		if err != nil {
			return fmt.Errorf("delete endpoint: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return sessiond.Errorf(sessiond.CodeNotFound, "webhook endpoint not found")
		}
		if _, err := tx.Exec(ctx, deletePendingOutbox, id); err != nil {
			return fmt.Errorf("delete pending deliveries: %w", err)
		}
		return nil
	})
	return storeError("delete webhook endpoint", err)
}

const (
	deleteEventsBefore = `DELETE FROM events WHERE id IN (
	SELECT id FROM events WHERE occurred_at < $1 ORDER BY occurred_at, id LIMIT $2)`
	deleteFinishedOutboxBefore = `DELETE FROM outbox WHERE id IN (
	SELECT id FROM outbox WHERE status IN ('delivered', 'failed') AND created_at < $1 LIMIT $2
	FOR UPDATE SKIP LOCKED)`
)

// DeleteEventsBefore deletes at most limit events older than cutoff.
func (db *DB) DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return db.deleteBatch(ctx, "delete old events", deleteEventsBefore, cutoff, limit)
}

// DeleteFinishedOutboxBefore deletes at most limit finished outbox
// messages created before cutoff; rows a worker holds are left for the
// next sweep.
func (db *DB) DeleteFinishedOutboxBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return db.deleteBatch(ctx, "delete old outbox messages", deleteFinishedOutboxBefore, cutoff, limit)
}

func (db *DB) deleteBatch(ctx context.Context, op, query string, cutoff time.Time, limit int) (int, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, query, sessiond.Now(cutoff), limit)
	if err != nil {
		return 0, storeError(op, err)
	}
	return int(tag.RowsAffected()), nil
}

const (
	allWebhookSecrets   = `SELECT id, secret FROM webhook_endpoints ORDER BY id FOR UPDATE`
	updateWebhookSecret = `UPDATE webhook_endpoints SET secret = $1 WHERE id = $2`
)

// ResealWebhookSecrets hands every endpoint's stored secret to reseal and
// stores what it returns.
func (db *DB) ResealWebhookSecrets(ctx context.Context, reseal func(sessiond.StoredSecret) ([]byte, error)) (int, error) {
	return db.reseal(ctx, "reseal webhook secrets", reseal,
		sealedColumn{kind: sessiond.SecretKindWebhook, sel: allWebhookSecrets, upd: updateWebhookSecret, text: true})
}

const (
	createAdminKey = `INSERT INTO admin_keys (name, hash, created_at) VALUES ($1, $2, $3)`
	adminKeyCols   = `name, hash, created_at, revoked_at, last_used_at`
	adminKeys      = `SELECT ` + adminKeyCols + ` FROM admin_keys ORDER BY created_at, name`
	adminKeyByHash = `SELECT ` + adminKeyCols + ` FROM admin_keys WHERE hash = $1`
	revokeAdminKey = `UPDATE admin_keys SET revoked_at = coalesce(revoked_at, $1) WHERE name = $2`
	touchAdminKey  = `UPDATE admin_keys SET last_used_at = $1 WHERE name = $2 AND (last_used_at IS NULL OR last_used_at < $1)`
)

// CreateAdminKey stores k. CodeInvalidRequest if the name is taken.
func (db *DB) CreateAdminKey(ctx context.Context, k *sessiond.AdminKey) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, createAdminKey, k.Name, k.Hash, sessiond.Now(k.CreatedAt))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "an admin key named %q exists (revoked keys keep their names)", k.Name)
	}
	return storeError("create admin key", err)
}

func scanAdminKey(row pgx.Row) (sessiond.AdminKey, error) {
	var (
		k             sessiond.AdminKey
		revoked, used *time.Time
	)
	if err := row.Scan(&k.Name, &k.Hash, &k.CreatedAt, &revoked, &used); err != nil {
		return k, err
	}
	k.CreatedAt, k.RevokedAt, k.LastUsedAt = sessiond.Now(k.CreatedAt), fromNull(revoked), fromNull(used)
	return k, nil
}

// AdminKeys lists every key, oldest first.
func (db *DB) AdminKeys(ctx context.Context) ([]sessiond.AdminKey, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, adminKeys)
	if err != nil {
		return nil, storeError("list admin keys", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.AdminKey, error) { return scanAdminKey(row) })
	if err != nil {
		return nil, storeError("list admin keys", err)
	}
	return out, nil
}

// AdminKeyByHash returns the key with that hash. CodeNotFound.
func (db *DB) AdminKeyByHash(ctx context.Context, hash []byte) (*sessiond.AdminKey, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	k, err := scanAdminKey(db.pool.QueryRow(ctx, adminKeyByHash, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "admin key not found")
	}
	if err != nil {
		return nil, storeError("get admin key", err)
	}
	return &k, nil
}

// RevokeAdminKey revokes the key named name. CodeNotFound.
func (db *DB) RevokeAdminKey(ctx context.Context, name string, now time.Time) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, revokeAdminKey, sessiond.Now(now), name)
	if err != nil {
		return storeError("revoke admin key", err)
	}
	if tag.RowsAffected() == 0 {
		return sessiond.Errorf(sessiond.CodeNotFound, "no admin key named %q", name)
	}
	return nil
}

// TouchAdminKey moves the key's last use forward to now.
func (db *DB) TouchAdminKey(ctx context.Context, name string, now time.Time) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, touchAdminKey, sessiond.Now(now), name)
	return storeError("touch admin key", err)
}
