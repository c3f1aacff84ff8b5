package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmts prepares the hot statements once per pool. Unprepared, SQLite parses
// every statement anew: that was a fifth of the CPU of a refresh (see
// docs/BENCHMARKS.md). database/sql re-prepares a *sql.Stmt by itself on a
// connection that has not seen it, so this is safe for the reader pool too.
type stmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// on returns pool's prepared statement for query.
func (s *stmts) on(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[query]; ok {
		return st, nil
	}
	st, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if s.m == nil {
		s.m = map[string]*sql.Stmt{}
	}
	s.m[query] = st
	return st, nil
}

func (s *stmts) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	s.m = nil
}
