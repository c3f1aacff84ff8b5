package sqlite

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
)

// acceptDPoPProof records a proof; the primary key makes a second insert
// of one key a no-op on the single writer, so exactly one caller is told it
// was new.
const acceptDPoPProof = `INSERT INTO dpop_proofs (key, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING`

// AcceptDPoPProof records the proof key until expires and reports whether
// it was new.
func (db *DB) AcceptDPoPProof(ctx context.Context, key []byte, expires time.Time) (bool, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	st, err := db.wstmts.on(ctx, db.w, acceptDPoPProof)
	if err != nil {
		return false, storeError("record dpop proof", err)
	}
	res, err := st.ExecContext(ctx, key, micros(sessiond.Now(expires)))
	if err != nil {
		return false, storeError("record dpop proof", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, storeError("record dpop proof", err)
	}
	return n == 1, nil
}

const deleteExpiredDPoPProofs = `DELETE FROM dpop_proofs WHERE key IN (
	SELECT key FROM dpop_proofs WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`

// DeleteExpiredDPoPProofs deletes one batch of proofs expired by now.
func (db *DB) DeleteExpiredDPoPProofs(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredDPoPProofs, "delete expired dpop proofs", now, limit)
}
