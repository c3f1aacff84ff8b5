package postgres

import "github.com/sessiond/sessiond"

// PoolStats reports the connection pool, for metrics.
func (db *DB) PoolStats() []sessiond.PoolStats {
	s := db.pool.Stat()
	return []sessiond.PoolStats{{
		Name: "primary", Max: int(s.MaxConns()), Open: int(s.TotalConns()), InUse: int(s.AcquiredConns()),
		Idle: int(s.IdleConns()), Waits: s.EmptyAcquireCount(), WaitTime: s.EmptyAcquireWaitTime(),
	}}
}
