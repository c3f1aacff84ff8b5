// Command seed fills a PostgreSQL sessiond database with users and sessions
// fast (COPY), for the scale figures of docs/BENCHMARKS.md:
//
//	go run ./bench/seed -db postgres://postgres@127.0.0.1:5432/bench -users 1000000 -sessions 5 -expired 1000000
//
// The database must be migrated (`sessiond migrate`). Every seeded user has
// the same password (-password), hashed once at the default argon2id cost;
// live sessions are spread over the last week, expired ones ended a day ago.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/password"
)

func main() {
	url := flag.String("db", "", "postgres:// URL of a migrated sessiond database")
	users := flag.Int("users", 1_000_000, "users to add")
	perUser := flag.Int("sessions", 5, "live sessions per user")
	expired := flag.Int("expired", 0, "expired sessions to add, spread over the users")
	pw := flag.String("password", "seeded horse battery staple", "password of every seeded user")
	flag.Parse()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, *url)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	hash, err := password.NewHasher(password.DefaultParams(), 1, time.Minute).Hash(ctx, *pw)
	if err != nil {
		log.Fatal(err)
	}
	now := sessiond.SystemClock()
	ids := make([]string, *users)
	for i := range ids {
		ids[i] = sessiond.NewID()
	}

	start := time.Now()
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "password_hash", "created_at"},
		pgx.CopyFromSlice(len(ids), func(i int) ([]any, error) {
			return []any{ids[i], fmt.Sprintf("seed-%d@bench.test", i), hash, now.Add(-30 * 24 * time.Hour)}, nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("users: %d in %v", n, time.Since(start).Round(time.Millisecond))

	cols := []string{"id", "user_id", "refresh_hash", "generation", "created_at", "last_used_at", "expires_at", "user_agent", "ip"}
	live := *users * *perUser
	start = time.Now()
	n, err = conn.CopyFrom(ctx, pgx.Identifier{"sessions"}, cols,
		pgx.CopyFromSlice(live+*expired, func(i int) ([]any, error) {
			var secret [32]byte
			rand.Read(secret[:])
			h := sha256.Sum256(secret[:])
			var created, used time.Time
			if i < live {
				created = now.Add(-time.Duration(i%7+1) * 24 * time.Hour)
				used = created.Add(time.Duration(i%1000) * time.Minute)
			} else {
				created = now.Add(-31 * 24 * time.Hour)
				used = now.Add(-8 * 24 * time.Hour) // past both idle (7d) and, with expires_at, absolute expiry
			}
			exp := created.Add(720 * time.Hour)
			if i >= live {
				exp = now.Add(-24 * time.Hour)
				created = exp.Add(-720 * time.Hour)
			}
			return []any{sessiond.NewID(), ids[i%len(ids)], h[:], 0, created, used, exp, "seed", "127.0.0.1"}, nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("sessions: %d (%d expired) in %v", n, *expired, time.Since(start).Round(time.Millisecond))
	if _, err := conn.Exec(ctx, "ANALYZE users; ANALYZE sessions"); err != nil {
		log.Fatal(err)
	}
}
