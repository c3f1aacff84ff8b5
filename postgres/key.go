package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
)

const keyColumns = `kid, alg, private_key, public_key, created_at, activates_at, retired_at`

const (
	// insertCurrentKey does nothing when a current key exists: the partial
	// unique index signing_keys_one_current_idx makes the race between
	// instances starting together safe, and the loser simply reads the
	// winner's key.
	insertCurrentKey = `INSERT INTO signing_keys (kid, alg, private_key, public_key, created_at, activates_at, retired_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULL)
		ON CONFLICT DO NOTHING`

	currentKey = `SELECT ` + keyColumns + ` FROM signing_keys WHERE retired_at IS NULL`
)

// ensureKeyAttempts bounds EnsureCurrentKey's loop; see there.
const ensureKeyAttempts = 3

// EnsureCurrentKey stores k as the current key unless there already is one,
// and returns the current key; concurrent callers all get the same key.
func (db *DB) EnsureCurrentKey(ctx context.Context, k *sessiond.SigningKey) (*sessiond.SigningKey, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	// Two statements, not one with a CTE: a statement's snapshot would not
	// see the row of a concurrent insert that made ours do nothing, while
	// the next statement (READ COMMITTED) does. If a rotation retires the
	// key between the two, there is briefly no current key: try again.
	for range ensureKeyAttempts {
		if _, err := db.exec(ctx, insertCurrentKey, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, k.CreatedAt, activation(k, k.CreatedAt)); err != nil {
			return nil, storeError("insert signing key", fmt.Errorf("insert signing key: %w", err))
		}
		cur, err := scanKey(db.pool.QueryRow(ctx, currentKey))
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, storeError("get current signing key", err)
		}
		return cur, nil
	}
	return nil, sessiond.Unavailable("ensure signing key", errors.New("no current signing key after insert"))
}

const (
	// lockKeyRotation serializes rotations (and only them) with a
	// transaction-scoped advisory lock. Without it, of two concurrent
	// rotations the second would not see the first's new key, retire
	// nothing, and then collide with it on the one-current-key index.
	lockKeyRotation = `SELECT pg_advisory_xact_lock($1)`

	// retireKeys ends the signing period of every key that would sign past
	// the new key's activation: the current one, and one still pending
	// from an earlier rotation that an emergency rotation overtakes.
	retireKeys = `UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1`

	kidTaken = `SELECT EXISTS (SELECT 1 FROM signing_keys WHERE kid = $1)`
)

// keyRotationLockID names the advisory lock of lockKeyRotation; any constant
// distinct from goose's migration lock (lock.DefaultLockID) will do.
const keyRotationLockID int64 = 0x73657373696f6e64 // "sessiond"

// RotateKey makes k the current key from k.ActivatesAt (now if zero) and
// retires the others then.
func (db *DB) RotateKey(ctx context.Context, k *sessiond.SigningKey, now time.Time) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		return rotateKey(ctx, tx, k, now)
	})
	return storeError("rotate signing key", err)
}

func rotateKey(ctx context.Context, tx pgx.Tx, k *sessiond.SigningKey, now time.Time) error {
	if _, err := tx.Exec(ctx, lockKeyRotation, keyRotationLockID); err != nil {
		return fmt.Errorf("lock key rotation: %w", err)
	}
	act := activation(k, now)
	if _, err := tx.Exec(ctx, retireKeys, act); err != nil {
		return fmt.Errorf("retire signing key: %w", err)
	}
	tag, err := tx.Exec(ctx, insertCurrentKey, k.ID, k.Algorithm, k.PrivateKey, k.PublicKey, k.CreatedAt, act)
	if err != nil {
		return fmt.Errorf("insert signing key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		// Roll back rather than leave no key or the wrong one current. A
		// taken kid is the caller's bug (internal, as SQLite's primary-key
		// violation is); otherwise an EnsureCurrentKey on an empty table
		// won the one-current-key index, and trying again will succeed.
		var taken bool
		if err := tx.QueryRow(ctx, kidTaken, k.ID).Scan(&taken); err != nil {
			return fmt.Errorf("look up signing key: %w", err)
		}
		if taken {
			return sessiond.Internal("insert signing key", fmt.Errorf("kid %q already exists", k.ID))
		}
		return fmt.Errorf("insert signing key %q: conflicts with an existing key", k.ID)
	}
	return nil
}

const listKeys = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY created_at DESC, kid DESC`

// ListKeys returns every key, newest first.
func (db *DB) ListKeys(ctx context.Context) ([]sessiond.SigningKey, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, listKeys)
	if err != nil {
		return nil, storeError("list signing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.SigningKey, error) {
		k, err := scanKey(row)
		if err != nil {
			return sessiond.SigningKey{}, err
		}
		return *k, nil
	})
	if err != nil {
		return nil, storeError("list signing keys", err)
	}
	return keys, nil
}

// activation is when k signs from: ActivatesAt, or else fallback.
func activation(k *sessiond.SigningKey, fallback time.Time) time.Time {
	if k.ActivatesAt.IsZero() {
		return fallback
	}
	return k.ActivatesAt
}

func scanKey(row pgx.Row) (*sessiond.SigningKey, error) {
	var (
		k         sessiond.SigningKey
		retiredAt *time.Time
	)
	if err := row.Scan(&k.ID, &k.Algorithm, &k.PrivateKey, &k.PublicKey, &k.CreatedAt, &k.ActivatesAt, &retiredAt); err != nil {
		return nil, err
	}
	k.CreatedAt = sessiond.Now(k.CreatedAt)
	k.ActivatesAt = sessiond.Now(k.ActivatesAt)
	k.RetiredAt = fromNull(retiredAt)
	return &k, nil
}

const (
	insertSecret = `INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`
	selectSecret = `SELECT value FROM secrets WHERE name = $1`
)

// EnsureSecret stores value under name unless a value exists, and returns the
// stored value; concurrent callers all get the same one.
func (db *DB) EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	// created_at is bookkeeping for operators; the interface passes no
	// clock, so the application's wall clock (not the database's) stamps it.
	if _, err := db.exec(ctx, insertSecret, name, value, sessiond.SystemClock()); err != nil {
		return nil, storeError("insert secret", err)
	}
	var stored []byte
	if err := db.pool.QueryRow(ctx, selectSecret, name).Scan(&stored); err != nil {
		return nil, storeError("get secret", err)
	}
	return stored, nil
}

// eraseRetiredKeys keeps the row (the kid stays taken, and `keys list`
// shows the history) but not the private part.
const eraseRetiredKeys = `UPDATE signing_keys SET private_key = ''::bytea WHERE retired_at <= $1 AND octet_length(private_key) > 0`

// EraseRetiredKeys deletes the private part of every key retired at or
// before cutoff, and returns how many it erased.
func (db *DB) EraseRetiredKeys(ctx context.Context, cutoff time.Time) (int, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, eraseRetiredKeys, cutoff)
	if err != nil {
		return 0, storeError("erase retired keys", err)
	}
	return int(tag.RowsAffected()), nil
}

const (
	// The rows stay locked until commit, so a concurrent EnsureSecret or
	// rotation cannot slip a value in between read and write.
	allSecrets      = `SELECT name, value FROM secrets ORDER BY name FOR UPDATE`
	allKeySecrets   = `SELECT kid, private_key FROM signing_keys WHERE octet_length(private_key) > 0 ORDER BY kid FOR UPDATE`
	updateSecret    = `UPDATE secrets SET value = $1 WHERE name = $2`
	updateKeySecret = `UPDATE signing_keys SET private_key = $1 WHERE kid = $2`
)

// ResealSecrets hands every stored secret to reseal and stores what it
// returns.
func (db *DB) ResealSecrets(ctx context.Context, reseal func(sessiond.StoredSecret) ([]byte, error)) (int, error) {
	return db.reseal(ctx, "reseal secrets", reseal,
		sealedColumn{kind: sessiond.SecretKindServer, sel: allSecrets, upd: updateSecret},
		sealedColumn{kind: sessiond.SecretKindSigningKey, sel: allKeySecrets, upd: updateKeySecret})
}

// sealedColumn is a column of stored secrets, for reseal: sel reads its
// (name, value) rows FOR UPDATE, upd ($1 value, $2 name) writes one back,
// and text says that the column is text rather than bytea.
type sealedColumn struct {
	kind, sel, upd string
	text           bool
}

// reseal is the loop of every Reseal method: each row of cols is handed to
// fn and what it returns replaces the value (nil: keep), in one
// transaction that holds the rows locked from read to commit, so that no
// value written in between is lost. An error of fn comes back as it is,
// with nothing changed.
func (db *DB) reseal(ctx context.Context, op string, fn func(sessiond.StoredSecret) ([]byte, error), cols ...sealedColumn) (int, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	n := 0
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		for _, c := range cols {
			rows, err := tx.Query(ctx, c.sel)
			if err != nil {
				return fmt.Errorf("select %s: %w", c.kind, err)
			}
			stored, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.StoredSecret, error) {
				s := sessiond.StoredSecret{Kind: c.kind}
				if !c.text {
					err := row.Scan(&s.Name, &s.Value)
					return s, err
				}
				var text string
				err := row.Scan(&s.Name, &text)
				s.Value = []byte(text)
				return s, err
			})
			if err != nil {
				return fmt.Errorf("select %s: %w", c.kind, err)
			}
			for _, s := range stored {
				v, err := fn(s)
				if err != nil {
					return &resealError{err}
				}
				if v == nil {
					continue
				}
				var value any = v
				if c.text {
					value = string(v)
				}
				if _, err := tx.Exec(ctx, c.upd, value, s.Name); err != nil {
					return fmt.Errorf("update %s %q: %w", s.Kind, s.Name, err)
				}
				n++
			}
		}
		return nil
	})
	var re *resealError
	if errors.As(err, &re) {
		return 0, re.err
	}
	if err != nil {
		return 0, storeError(op, err)
	}
	return n, nil
}

// resealError carries the reseal function's own error out of the
// transaction untranslated.
type resealError struct{ err error }

func (e *resealError) Error() string { return e.err.Error() }
