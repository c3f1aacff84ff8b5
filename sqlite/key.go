package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sessiond/sessiond"
)

const keyColumns = `kid, alg, private_key, public_key, created_at, activates_at, retired_at`

func scanKey(row interface{ Scan(...any) error }) (*sessiond.SigningKey, error) {
	var (
		k                  sessiond.SigningKey
		created, activates int64
		retired            sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey, &created, &activates, &retired); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMicros(created)
	k.ActivatesAt = fromMicros(activates)
	k.RetiredAt = fromNullMicros(retired)
	return &k, nil
}

// activation is when k signs from: ActivatesAt, or else fallback.
func activation(k *sessiond.SigningKey, fallback time.Time) time.Time {
	if k.ActivatesAt.IsZero() {
		return fallback
	}
	return k.ActivatesAt
}

const (
	// insertCurrentKeyIfNone relies on the partial unique index
	// signing_keys_one_current: when a current key exists the insert is a
	// no-op, so concurrent callers (even in other processes) converge.
	insertCurrentKeyIfNone = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, NULL)
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
	if _, err := tx.ExecContext(ctx, insertCurrentKeyIfNone, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, micros(k.CreatedAt), micros(activation(k, k.CreatedAt))); err != nil {
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
	// retireKeys ends the signing period of every key that would sign past
	// the new key's activation: the current one, and one still pending
	// from an earlier rotation that an emergency rotation overtakes.
	retireKeys = `UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL OR retired_at > ?1`

	insertKey = `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, NULL)`
)

// RotateKey makes k the current key from k.ActivatesAt (now if zero) and
// retires the others then, in one transaction so that there is never a
// moment without a current key.
func (db *DB) RotateKey(ctx context.Context, k *sessiond.SigningKey, now time.Time) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return storeError("rotate key", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, retireKeys, micros(activation(k, now))); err != nil {
		return storeError("rotate key", fmt.Errorf("retire key: %w", err))
	}
	// A reused kid violates the primary key: the caller's bug, which
	// storeError reports as internal, not as an outage.
	_, err = tx.ExecContext(ctx, insertKey, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, micros(k.CreatedAt), micros(activation(k, now)))
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

// eraseRetiredKeys keeps the row (the kid stays taken, and `keys list`
// shows the history) but not the private part.
const eraseRetiredKeys = `UPDATE signing_keys SET private_key = X'' WHERE retired_at <= ? AND length(private_key) > 0`

// EraseRetiredKeys deletes the private part of every key retired at or
// before cutoff, and returns how many it erased.
func (db *DB) EraseRetiredKeys(ctx context.Context, cutoff time.Time) (int, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, eraseRetiredKeys, micros(cutoff))
	if err != nil {
		return 0, storeError("erase retired keys", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError("erase retired keys", err)
	}
	return int(n), nil
}

const (
	allSecrets      = `SELECT name, value FROM secrets ORDER BY name`
	allKeySecrets   = `SELECT kid, private_key FROM signing_keys WHERE length(private_key) > 0 ORDER BY kid`
	updateSecret    = `UPDATE secrets SET value = ? WHERE name = ?`
	updateKeySecret = `UPDATE signing_keys SET private_key = ? WHERE kid = ?`
)

// ResealSecrets hands every stored secret to reseal and stores what it
// returns.
func (db *DB) ResealSecrets(ctx context.Context, reseal func(sessiond.StoredSecret) ([]byte, error)) (int, error) {
	return db.reseal(ctx, "reseal secrets", reseal,
		sealedColumn{kind: sessiond.SecretKindServer, sel: allSecrets, upd: updateSecret},
		sealedColumn{kind: sessiond.SecretKindSigningKey, sel: allKeySecrets, upd: updateKeySecret})
}

// sealedColumn is a column of stored secrets, for reseal: sel reads its
// (name, value) rows, upd (value, name) writes one back, and text says
// that the column holds text rather than bytes (a STRICT table refuses
// the other).
type sealedColumn struct {
	kind, sel, upd string
	text           bool
}

// reseal is the loop of every Reseal method: each row of cols is handed to
// fn and what it returns replaces the value (nil: keep), in one write
// transaction (SQLite's single writer keeps the rows from changing under
// it). An error of fn comes back as it is, with nothing changed.
func (db *DB) reseal(ctx context.Context, op string, fn func(sessiond.StoredSecret) ([]byte, error), cols ...sealedColumn) (int, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, storeError(op, err)
	}
	defer tx.Rollback()
	n := 0
	for _, c := range cols {
		stored, err := scanSecrets(ctx, tx, c.kind, c.sel)
		if err != nil {
			return 0, storeError(op, err)
		}
		for _, s := range stored {
			v, err := fn(s)
			if err != nil {
				return 0, err
			}
			if v == nil {
				continue
			}
			var value any = v
			if c.text {
				value = string(v)
			}
			if _, err := tx.ExecContext(ctx, c.upd, value, s.Name); err != nil {
				return 0, storeError(op, fmt.Errorf("update %s %q: %w", s.Kind, s.Name, err))
			}
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, storeError(op, fmt.Errorf("commit: %w", err))
	}
	return n, nil
}

func scanSecrets(ctx context.Context, tx *sql.Tx, kind, query string) ([]sessiond.StoredSecret, error) {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("select %s: %w", kind, err)
	}
	defer rows.Close()
	var out []sessiond.StoredSecret
	for rows.Next() {
		s := sessiond.StoredSecret{Kind: kind}
		if err := rows.Scan(&s.Name, &s.Value); err != nil {
			return nil, fmt.Errorf("scan %s: %w", kind, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select %s: %w", kind, err)
	}
	return out, nil
}
