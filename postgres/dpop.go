package postgres

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
)

// acceptDPoPProof records a proof. The primary key decides between
// concurrent inserts of one key on any number of instances: exactly one
// inserts a row, the others wait for it and insert nothing.
const acceptDPoPProof = `INSERT INTO dpop_proofs (key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`

// AcceptDPoPProof records the proof key until expires and reports whether
// it was new.
func (db *DB) AcceptDPoPProof(ctx context.Context, key []byte, expires time.Time) (bool, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, acceptDPoPProof, key, sessiond.Now(expires))
	if err != nil {
		return false, storeError("record dpop proof", err)
	}
	return tag.RowsAffected() == 1, nil
}

// deleteExpiredDPoPProofs deletes one batch; SKIP LOCKED lets the sweepers
// of several instances share the work.
const deleteExpiredDPoPProofs = `DELETE FROM dpop_proofs WHERE key IN (
	SELECT key FROM dpop_proofs WHERE expires_at <= $1
	ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`

// DeleteExpiredDPoPProofs deletes at most limit proofs expired by now.
func (db *DB) DeleteExpiredDPoPProofs(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredDPoPProofs, "delete expired dpop proofs", now, limit)
}
