#!/usr/bin/env bash
# Scale figures for docs/BENCHMARKS.md (target 3), on PostgreSQL: refresh and
# login on a small database and on one with 1,000,000 users and 5,000,000
# live sessions (plus 1,000,000 expired), measured alternately in one run;
# the query plans of the hot statements on the big one; and refresh p99 while
# a second instance's sweeper deletes the 1,000,000 expired sessions.
#
#   bench/scale.sh          # USERS=1000000 EXPIRED=1000000 ROUNDS=3 DURATION=10s
set -euo pipefail
cd "$(dirname "$0")/.."
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
users=${USERS:-1000000}
expired=${EXPIRED:-1000000}
rounds=${ROUNDS:-3}
dur=${DURATION:-10s}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	for d in bench_small bench_big; do psql -q "$pg/test" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" 2>/dev/null || true; done
}
trap cleanup EXIT
go build -o "$work/sessiond" ./cmd/sessiond
go build -o "$work/seed" ./bench/seed

fresh() { psql -q "$pg/test" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; echo "$pg/$1?sslmode=disable"; }
small=$(fresh bench_small); big=$(fresh bench_big)
SESSIOND_DATABASE_URL=$small "$work/sessiond" migrate >/dev/null
SESSIOND_DATABASE_URL=$big "$work/sessiond" migrate >/dev/null
echo "seeding $users users, $((users * 5)) live and $expired expired sessions"
"$work/seed" -db "$big" -users "$users" -sessions 5 -expired "$expired" 2>&1 | sed 's/^/  /'
psql -Atq "$big" -c "SELECT 'big database: ' || pg_size_pretty(pg_database_size(current_database())) || ', sessions ' || (SELECT count(*) FROM sessions)"

serve() { # port url sweep-interval
	SESSIOND_ADDR=127.0.0.1:$1 SESSIOND_PUBLIC_URL=http://127.0.0.1:$1 SESSIOND_SIGNUP_RATE=1000000 SESSIOND_DATABASE_URL=$2 SESSIOND_SWEEP_INTERVAL=$3 "$work/sessiond" >"$work/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/readyz" -o /dev/null && return; sleep 0.1; done
	echo "sessiond on $1 did not come up"; exit 1
}
bench() { "$work/sessiond" bench -url "http://127.0.0.1:$1" -op "$2" -c 16 -d "$dur" -json; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

serve 18280 "$small" 1h
serve 18281 "$big" 1h
for op in refresh login; do
	: >"$work/small.$op"; : >"$work/big.$op"
	for r in $(seq "$rounds"); do
		for port in 18280 18281; do
			name=small; [ $port = 18281 ] && name=big
			out=$(bench $port $op)
			echo "$out" | jq -r .rps >>"$work/$name.$op"
			echo "round $r $op $name: $(echo "$out" | jq -c '{rps: (.rps*10|floor/10), p50_ms, p99_ms, errors}')"
		done
	done
	s=$(median <"$work/small.$op"); b=$(median <"$work/big.$op")
	echo "$op c=16 median req/s: small $s, big $b, big/small $(echo "$s $b" | awk '{printf "%.2f", $2/$1}')"
done

echo; echo "query plans on the big database (inside a rolled-back transaction)"
sid=$(psql -Atq "$big" -c "SELECT id FROM sessions WHERE expires_at > now() ORDER BY id LIMIT 1 OFFSET 123456")
uid=$(psql -Atq "$big" -c "SELECT user_id FROM sessions WHERE id = '$sid'")
rh=$(psql -Atq "$big" -c "SELECT encode(refresh_hash, 'hex') FROM sessions WHERE id = '$sid'")
psql -q "$big" <<SQL
BEGIN;
\echo '-- refresh fast path (one statement)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) UPDATE sessions SET refresh_hash = '\\x00', prev_hash = refresh_hash, generation = generation + 1, rotated_at = now(), last_used_at = now()
 WHERE id = '$sid' AND generation = 0 AND refresh_hash = '\\x$rh' AND expires_at > now() AND last_used_at > now() - interval '7 days'
 RETURNING id, user_id, refresh_hash, prev_hash, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip;
\echo '-- login: lock the user'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id FROM users WHERE id = '$uid' FOR UPDATE;
\echo '-- login: the user''s sessions, locked, for the eviction rule'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, created_at, last_used_at, expires_at FROM sessions WHERE user_id = '$uid' FOR UPDATE;
\echo '-- login: evict'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM sessions WHERE id = ANY(ARRAY['$sid']);
\echo '-- login: the user by email'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id, email, password_hash, created_at FROM users WHERE email = 'seed-4242@bench.test';
\echo '-- sweeper batches (absolute, then idle expiry)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= now() ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED);
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE last_used_at <= now() - interval '7 days' ORDER BY last_used_at LIMIT 500 FOR UPDATE SKIP LOCKED);
ROLLBACK;
SQL

echo; echo "refresh p99 while a second instance sweeps $expired expired sessions"
for r in 1 2; do echo "idle $r: $(bench 18281 refresh | jq -c '{rps: (.rps|floor), p50_ms, p99_ms}')"; done
start=$(date +%s)
serve 18282 "$big" 1s
left() { psql -Atq "$big" -c "SELECT count(*) FROM sessions WHERE expires_at <= now()"; }
while [ "$(left)" -gt 0 ]; do
	echo "sweeping ($(left) expired left): $(bench 18281 refresh | jq -c '{rps: (.rps|floor), p50_ms, p99_ms}')"
done
echo "sweep done in about $(( $(date +%s) - start ))s"
