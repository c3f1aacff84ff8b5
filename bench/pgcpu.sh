#!/usr/bin/env bash
# PostgreSQL's CPU per refresh and per login, for docs/OPERATIONS.md's
# capacity model: the utime+stime (/proc/PID/stat) of the client backends
# serving this script's database, sampled every 0.1 s through a c=4 load on a
# pool of 4. Run it where PostgreSQL is local (it reads the backends' /proc).
#
#   bench/pgcpu.sh                 # RD=20s LD=20s
set -euo pipefail
cd "$(dirname "$0")/.."
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
db=bench_pgcpu
work=$(mktemp -d)
go build -o "$work/sessiond" ./cmd/sessiond
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
SESSIOND_ADDR=127.0.0.1:18480 SESSIOND_PUBLIC_URL=http://127.0.0.1:18480 SESSIOND_SIGNUP_RATE=1000000 SESSIOND_DATABASE_URL="$pg/$db?sslmode=disable&pool_max_conns=4&pool_min_conns=4" "$work/sessiond" >"$work/sd.log" 2>&1 &
sd=$!
trap 'kill $sd 2>/dev/null; wait 2>/dev/null; psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18480/readyz -o /dev/null && break; sleep 0.2; done
pids() { psql -Atq "$pg/postgres" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend' ORDER BY pid" | tr '\n' ' '; }
ticks() { local t=0; for p in $1; do read -r -a f < /proc/$p/stat; t=$((t + f[13] + f[14])); done; echo $t; }
hz=$(getconf CLK_TCK)
run() { # op duration
	"$work/sessiond" bench -url http://127.0.0.1:18480 -op "$1" -c 4 -d 2s -json >/dev/null # warm-up, fills the pool
	local out n sampler used
	: >"$work/samples"
	# Backends come and go (a cancelled query closes its connection), so
	# sample every backend's ticks often and count each one's growth.
	( while :; do for p in $(pids); do [ -r /proc/$p/stat ] && { read -r -a f < /proc/$p/stat; echo "$p $((f[13] + f[14]))"; } ; done; sleep 0.1; done >>"$work/samples" 2>/dev/null ) &
	sampler=$!
	sleep 0.5
	out=$("$work/sessiond" bench -url http://127.0.0.1:18480 -op "$1" -c 4 -d "$2" -json)
	kill $sampler; wait $sampler 2>/dev/null || true
	used=$(awk '{ if (!($1 in lo)) lo[$1] = $2; hi[$1] = $2 } END { for (p in hi) t += hi[p] - lo[p]; print t }' "$work/samples")
	n=$(echo "$out" | jq .requests)
	echo "$1: $(awk '{print $1}' "$work/samples" | sort -u | wc -l) backends seen; $n requests, errors $(echo "$out" | jq -c .errors); backend CPU $(( used * 1000 / hz )) ms => $(( used * 1000000 / hz / n )) µs per $1 (sessiond bench -c 4 -d $2)"
}
run refresh "${RD:-20s}"
run login "${LD:-20s}"
