#!/usr/bin/env bash
# WAL written per login and per refresh on PostgreSQL, for docs/BENCHMARKS.md
# ("Capacity inputs"). The server may be shared: only records whose blocks
# are in this script's database are counted, plus every record (commits too)
# of the transactions that wrote them (pg_walinspect, PostgreSQL 15+). A
# temporary physical replication slot keeps the WAL from being recycled
# before it is read; it is dropped on exit.
#
#   bench/walcost.sh            # N=50 logins per phase, R=300 refreshes
set -euo pipefail
cd "$(dirname "$0")/.."
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
db=bench_walcost
N=${N:-50}
R=${R:-300}
work=$(mktemp -d)
go build -o "$work/sessiond" ./cmd/sessiond
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
psql -q "$pg/$db" -c "CREATE EXTENSION pg_walinspect" >/dev/null
oid=$(psql -Atq "$pg/$db" -c "SELECT oid FROM pg_database WHERE datname = current_database()")
SESSIOND_ADDR=127.0.0.1:18380 SESSIOND_PUBLIC_URL=http://127.0.0.1:18380 SESSIOND_SIGNUP_RATE=1000000 SESSIOND_DATABASE_URL="$pg/$db?sslmode=disable" "$work/sessiond" >"$work/sd.log" 2>&1 &
sd=$!
psql -q "$pg/$db" -c "SELECT pg_create_physical_replication_slot('bench_walcost', true)" >/dev/null
cleanup() {
	kill $sd 2>/dev/null || true; wait 2>/dev/null || true
	psql -q "$pg/postgres" -c "SELECT pg_drop_replication_slot('bench_walcost')" >/dev/null 2>&1 || true
	psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18380/readyz -o /dev/null && break; sleep 0.2; done
u=http://127.0.0.1:18380
post() { curl -s -X POST -H 'Content-Type: application/json' -A 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' "$u$1" -d "$2"; }
pw='correct horse battery staple'
lsn() { psql -Atq "$pg/$db" -c "SELECT pg_current_wal_lsn()"; }
measure() { # name n lsn0 lsn1
	psql -Atq "$pg/$db" -F ' ' <<SQL
WITH r AS (SELECT * FROM pg_get_wal_records_info('$3', '$4')),
ours AS (SELECT DISTINCT xid FROM r WHERE xid <> 0 AND block_ref LIKE '%/$oid/%')
SELECT '$1', $2 AS ops, count(*) AS records, sum(record_length) AS bytes, sum(fpi_length) AS fpi_bytes,
       round(sum(record_length)::numeric / $2) AS bytes_per_op, round((sum(record_length) - sum(fpi_length))::numeric / $2) AS bytes_per_op_without_fpi,
       round(count(*)::numeric / $2, 1) AS records_per_op
FROM r WHERE xid IN (SELECT xid FROM ours) OR (xid = 0 AND block_ref LIKE '%/$oid/%');
SELECT '  $1 by record type:', string_agg(t || ' ' || round(n::numeric / $2, 2), ', ' ORDER BY n DESC) FROM (
  SELECT resource_manager || '/' || record_type AS t, count(*) AS n FROM pg_get_wal_records_info('$3', '$4') r
  WHERE xid IN (SELECT DISTINCT xid FROM pg_get_wal_records_info('$3', '$4') WHERE xid <> 0 AND block_ref LIKE '%/$oid/%') OR (xid = 0 AND block_ref LIKE '%/$oid/%')
  GROUP BY 1) x;
SELECT '  $1 by relation (bytes per op):', string_agg(rel || ' ' || round(b::numeric / $2), ', ' ORDER BY b DESC) FROM (
  SELECT coalesce(c.relname, 'other') AS rel, sum(r.record_length) AS b
  FROM pg_get_wal_records_info('$3', '$4') r
  LEFT JOIN pg_class c ON c.relfilenode = (regexp_match(r.block_ref, 'rel \d+/$oid/(\d+)'))[1]::oid
  WHERE r.xid IN (SELECT DISTINCT xid FROM pg_get_wal_records_info('$3', '$4') WHERE xid <> 0 AND block_ref LIKE '%/$oid/%') OR (r.xid = 0 AND r.block_ref LIKE '%/$oid/%')
  GROUP BY 1) x;
SQL
}
# signups (not measured), then one login each: no eviction.
for i in $(seq $N); do post /v1/signup "{\"email\":\"u$i@example.com\",\"password\":\"$pw\"}" >/dev/null; done
psql -q "$pg/$db" -c CHECKPOINT >/dev/null
a=$(lsn); for i in $(seq $N); do post /v1/login "{\"email\":\"u$i@example.com\",\"password\":\"$pw\"}" >/dev/null; done; b=$(lsn)
measure login_no_eviction $N $a $b
# one user at the cap: every login evicts one.
for i in $(seq 5); do post /v1/login "{\"email\":\"u1@example.com\",\"password\":\"$pw\"}" >/dev/null; done
a=$(lsn); for i in $(seq $N); do post /v1/login "{\"email\":\"u1@example.com\",\"password\":\"$pw\"}" >/dev/null; done; b=$(lsn)
measure login_evicting $N $a $b
# refreshes: R rotations of one session, one after the other.
rt=$(post /v1/login "{\"email\":\"u2@example.com\",\"password\":\"$pw\"}" | jq -r .refresh_token)
a=$(lsn); for i in $(seq $R); do rt=$(post /v1/refresh "{\"refresh_token\":\"$rt\"}" | jq -r .refresh_token); done; b=$(lsn)
[ "$rt" != null ] || { echo "refresh failed"; exit 1; }
measure refresh_one_session $R $a $b
psql -Atq "$pg/$db" -c "SELECT 'sessions rows', count(*) FROM sessions"
