#!/usr/bin/env bash
# Refresh throughput at c=16 against the pool size, for docs/BENCHMARKS.md
# ("Pool size"): one sessiond per pool_max_conns (4, 8, 16, 32) on one fresh
# PostgreSQL database, measured in turn, ROUNDS rounds in rotating order,
# VACUUM before each measurement, the load average and sessiond's CPU time
# per request recorded beside each.
#
#   bench/poolsize.sh           # ROUNDS=3 DURATION=10s
set -euo pipefail
cd "$(dirname "$0")/.."
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
db=bench_poolsize
rounds=${ROUNDS:-3}
dur=${DURATION:-10s}
sizes=(4 8 16 32)
w=$(mktemp -d)
go build -o "$w/sessiond" ./cmd/sessiond
psql -q $pg/postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
SESSIOND_DATABASE_URL="$pg/$db?sslmode=disable" $w/sessiond migrate >/dev/null
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; psql -q $pg/postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$w"; }
trap cleanup EXIT
for n in "${sizes[@]}"; do
	SESSIOND_ADDR=127.0.0.1:$((18400 + n)) SESSIOND_PUBLIC_URL=http://127.0.0.1:$((18400 + n)) SESSIOND_SIGNUP_RATE=1000000 SESSIOND_DATABASE_URL="$pg/$db?sslmode=disable&pool_max_conns=$n" $w/sessiond >$w/sd$n.log 2>&1 &
	pids+=($!)
done
cpu_of() { for p in "$@"; do awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || true; done | awk '{s+=$1} END {print s+0}'; }
declare -A sdpid
i=0; for n in "${sizes[@]}"; do sdpid[$n]=${pids[$i]}; i=$((i+1)); done
for n in "${sizes[@]}"; do for _ in $(seq 100); do curl -sf http://127.0.0.1:$((18400 + n))/readyz -o /dev/null && break; sleep 0.2; done; done
echo "machine: $(nproc) cores; $rounds rounds of $dur, refresh c=16; start $(date -u +%H:%M:%S)"
for r in $(seq $rounds); do
	order=("${sizes[@]:$(( (r-1) % 4 ))}" "${sizes[@]:0:$(( (r-1) % 4 ))}")
	for n in "${order[@]}"; do
		psql -q $pg/$db -c "VACUUM (ANALYZE)" >/dev/null
		load=$(cut -d' ' -f1 /proc/loadavg)
		sd0=$(cpu_of ${sdpid[$n]})
		out=$($w/sessiond bench -url http://127.0.0.1:$((18400 + n)) -op refresh -c 16 -d $dur -json)
		sd1=$(cpu_of ${sdpid[$n]})
		reqs=$(echo "$out" | jq -r .requests)
		echo "$out" | jq -r .rps >>$w/rps$n
		echo "$out" | jq -r .p99_ms >>$w/p99$n
		echo "round $r pool=$n load=$load $(echo "$out" | jq -c '{rps: (.rps|floor), p50_ms, p99_ms, errors}') load_after=$(cut -d' ' -f1 /proc/loadavg) sessiond_cpu_us_per_req $(( (sd1-sd0)*10000/reqs )) (includes set-up logins)"
	done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
base=$(median <$w/rps4)
for n in "${sizes[@]}"; do m=$(median <$w/rps$n); echo "pool=$n median $m req/s, p99 median $(median <$w/p99$n) ms, ratio to pool=4: $(echo "$m $base" | awk '{printf "%.2f", $1/$2}')"; done
echo "end $(date -u +%H:%M:%S)"
