package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sessiond/sessiond"
)

const keyColumns = `kid, alg, private_key, public_key, created_at, retired_at`

func scanKey(row interface{ Scan(...any) error }) (*sessiond.SigningKey, error) {
	var (
		k       sessiond.SigningKey
		created int64
		retired sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey, &created, &retired); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(created)
	k.RetiredAt = fromNullMicros(retired)
	return &k, nil
}

const (
	// insertCurrentKeyIfNone relies on the partial unique index
	// signing_keys_one_current: when a current key exists the insert is a
	// no-op, so concurrent callers (even in other processes) converge.
	insertCurrentKeyIfNone = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, NULL)
ON CONFLICT DO NOTHING`

	currentKey = `SELECT ` + keyColumns + ` FROM signing_keys WHERE retired_at IS NULL`
)

// EnsureCurrentKey stores k as the current key unless there already is one,
// and returns the current key.
func (db *DB) EnsureCurrentKey(ctx context.Context, k *sessiond.SigningKey) (*sessiond.SigningKey, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, storeError("ensure current key", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insertCurrentKeyIfNone, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, micros(k.CreatedAt)); err != nil {
		return nil, storeError("ensure current key", fmt.Errorf("insert key: %w", err))
	}
	cur, err := scanKey(tx.QueryRowContext(ctx, currentKey))
	if err != nil {
		// ErrNoRows included: after the insert there must be a current key.
		return nil, storeError("ensure current key", fmt.Errorf("select current key: %w", err))
	}
	if err := tx.Commit(); err != nil {
		return nil, storeError("ensure current key", fmt.Errorf("commit: %w", err))
	}
	return cur, nil
}

const (
	retireCurrentKey = `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`

	insertKey = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, NULL)`
)

// RotateKey retires the current key at now and makes k current, in one
// transaction so that there is never a moment without a current key.
func (db *DB) RotateKey(ctx context.Context, k *sessiond.SigningKey, now time.Time) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return storeError("rotate key", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, retireCurrentKey, micros(now)); err != nil {
		return storeError("rotate key", fmt.Errorf("retire key: %w", err))
	}
	// A reused kid violates the primary key: the caller's bug, which
	// storeError reports as internal, not as an outage.
	_, err = tx.ExecContext(ctx, insertKey, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, micros(k.CreatedAt))
	if err != nil {
		return storeError("rotate key", fmt.Errorf("insert key: %w", err))
	}
	if err := tx.Commit(); err != nil {
		return storeError("rotate key", fmt.Errorf("commit: %w", err))
	}
	return nil
}

const listKeys = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at DESC, kid DESC`

// ListKeys returns every key, newest first.
func (db *DB) ListKeys(ctx context.Context) ([]sessiond.SigningKey, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, listKeys)
	if err != nil {
		return nil, storeError("list keys", err)
	}
	defer rows.Close()
	var out []sessiond.SigningKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, storeError("list keys", err)
		}
		out = append(out, *k)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list keys", err)
	}
	return out, nil
}

const (
	insertSecretIfNone = `INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`

	secretByName = `SELECT value FROM secrets WHERE name = ?`
)

// EnsureSecret stores value under name unless a value exists, and returns
// the stored value. created_at is informational only, so it comes from the
// system clock rather than a caller's now.
func (db *DB) EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, storeError("ensure secret", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insertSecretIfNone, name, value, micros(sessiond.SystemClock())); err != nil {
		return nil, storeError("ensure secret", fmt.Errorf("insert secret: %w", err))
	}
	var stored []byte
	err = tx.QueryRowContext(ctx, secretByName, name).Scan(&stored)
	if err != nil { // ErrNoRows included: the row was just ensured
		return nil, storeError("ensure secret", fmt.Errorf("select secret: %w", err))
	}
	if err := tx.Commit(); err != nil {
		return nil, storeError("ensure secret", fmt.Errorf("commit: %w", err))
	}
	return stored, nil
}
