package sqlite

import (
	"database/sql"

	"github.com/sessiond/sessiond"
)

// PoolStats reports the writer and reader pools, for metrics. Waits on the
// writer are the queue that serializes SQLite's writes.
func (db *DB) PoolStats() []sessiond.PoolStats {
	conv := func(name string, s sql.DBStats) sessiond.PoolStats {
		return sessiond.PoolStats{Name: name, Max: s.MaxOpenConnections, Open: s.OpenConnections, InUse: s.InUse,
			Idle: s.Idle, Waits: s.WaitCount, WaitTime: s.WaitDuration}
	}
	return []sessiond.PoolStats{conv("writer", db.w.Stats()), conv("reader", db.r.Stats())}
}
