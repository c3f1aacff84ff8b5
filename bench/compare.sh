#!/usr/bin/env bash
# Side-by-side measurements for docs/BENCHMARKS.md, all in one run on this
# machine: sessiond against bench/refmin (refresh), against bench/argonrate
# (login), and sessiond's peak memory under c=256 loads.
#
#   bench/compare.sh sqlite            # or: postgres
#   ROUNDS=5 DURATION=10s bench/compare.sh postgres
#   BASELINE=7cf7617 bench/compare.sh sqlite   # also an older revision, same run
#   DPOP=1 bench/compare.sh sqlite             # also device-bound (DPoP) refreshes
#
# With BASELINE (a git revision), that revision's sessiond is built too and
# takes its turn in every refresh and login round, on its own fresh
# database, so that before and after meet the same machine noise; the
# ratio printed is of the per-round pairs' median. With DPOP=1, a DPoP
# refresh load (bench -dpop: a proof made and checked per request, its jti
# recorded) takes a turn in every refresh round too, against the same
# sessiond as the plain one.
#
# PostgreSQL runs use fresh databases on $PGURL's server (default: the local one).
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-sqlite}
rounds=${ROUNDS:-5}
dur=${DURATION:-10s}
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	if [ "$store" = postgres ]; then for d in bench_sd bench_base bench_ref bench_mem_refresh bench_mem_login; do psql -q "$pg/test" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" 2>/dev/null || true; done; fi
}
trap cleanup EXIT

go build -o "$work/sessiond" ./cmd/sessiond
if [ -n "${BASELINE:-}" ]; then
	git worktree add -q --detach "$work/base-src" "$BASELINE"
	(cd "$work/base-src" && go build -o "$work/sessiond-base" ./cmd/sessiond)
	git worktree remove --force "$work/base-src"
fi
go build -o "$work/refmin" ./bench/refmin
go build -o "$work/argonrate" ./bench/argonrate

dburl() { # a fresh database for $1
	if [ "$store" = sqlite ]; then echo "sqlite:$work/$1.db"; return; fi
	psql -q "$pg/test" -c "DROP DATABASE IF EXISTS bench_$1" -c "CREATE DATABASE bench_$1" >/dev/null
	echo "$pg/bench_$1?sslmode=disable"
}
# PostgreSQL here runs with autovacuum off: each round starts from vacuumed
# tables, so dead rows of earlier rounds do not tax later contenders.
vacuum() { # database names
	[ "$store" = postgres ] || return 0
	for d in "$@"; do psql -q "$pg/bench_$d" -c "VACUUM ANALYZE" 2>/dev/null || true; done
}
start_sessiond() { # port name [binary]; the admin listener (/metrics) is on port+1000
	SESSIOND_ADDR=127.0.0.1:$1 SESSIOND_PUBLIC_URL=http://127.0.0.1:$1 SESSIOND_ADMIN_ADDR=127.0.0.1:$(($1 + 1000)) SESSIOND_SIGNUP_RATE=1000000 SESSIOND_LOGIN_MAX_IP_FAILURES=1000000 SESSIOND_DATABASE_URL=$(dburl "$2") "${3:-$work/sessiond}" >"$work/$2.log" 2>&1 &
	pids+=($!); echo $! >"$work/$2.pid"
}
wait_up() { for _ in $(seq 50); do curl -sf "http://127.0.0.1:$1/$2" -o /dev/null && return; sleep 0.1; done; echo "port $1 did not come up"; exit 1; }
bench() { "$work/sessiond" bench -url "http://127.0.0.1:$1" -op "$2" -c "$3" -d "$dur" -json "${@:4}"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2/1048576 " GiB"}'), $(uname -r); store: $store; $rounds rounds of $dur"

# 1. Refresh, c=16: sessiond and refmin (and the baseline) take turns, each
# on its own fresh database.
start_sessiond 18180 sd
"$work/refmin" -addr 127.0.0.1:18190 -db "$(dburl ref)" >"$work/ref.log" 2>&1 & pids+=($!)
ports="18180 18190"
if [ -n "${BASELINE:-}" ]; then
	start_sessiond 18170 base "$work/sessiond-base"
	wait_up 18170 healthz
	ports="18180 18170 18190"
fi
wait_up 18180 healthz; sleep 0.5
[ -n "${DPOP:-}" ] && ports="$ports dpop"
: >"$work/dpop.rps"; : >"$work/dpop.p99"
: >"$work/sd.rps"; : >"$work/ref.rps"; : >"$work/sd.p99"; : >"$work/ref.p99"; : >"$work/base.rps"; : >"$work/base.p99"
for r in $(seq "$rounds"); do
	vacuum sd ref base
	# Rotate who goes first, so no contender always follows the same one.
	order=$(echo $ports | tr ' ' '\n' | awk -v r="$r" '{a[NR-1]=$0} END {for (i = 0; i < NR; i++) print a[(i + r) % NR]}')
	for port in $order; do
		if [ "$port" = dpop ]; then out=$(bench 18180 refresh 16 -dpop); else out=$(bench "$port" refresh 16); fi
		name=sd; [ "$port" = 18190 ] && name=ref; [ "$port" = 18170 ] && name=base; [ "$port" = dpop ] && name=dpop
		echo "$out" | jq -r .rps >>"$work/$name.rps"
		echo "$out" | jq -r .p99_ms >>"$work/$name.p99"
		echo "round $r $name: $(echo "$out" | jq -c '{rps: (.rps|floor), p50_ms, p99_ms, errors}')"
	done
done
sd=$(median <"$work/sd.rps"); ref=$(median <"$work/ref.rps")
echo "refresh c=16 median req/s: sessiond $sd, refmin $ref, ratio $(echo "$sd $ref" | awk '{printf "%.2f", $1/$2}')"
echo "refresh c=16 median p99 ms: sessiond $(median <"$work/sd.p99"), refmin $(median <"$work/ref.p99")"
if [ -n "${DPOP:-}" ]; then
	d=$(median <"$work/dpop.rps")
	echo "refresh c=16 DPoP: median $d req/s, p99 $(median <"$work/dpop.p99") ms, ratio to refmin $(echo "$d $ref" | awk '{printf "%.2f", $1/$2}'); DPoP/plain per round, median: $(paste "$work/dpop.rps" "$work/sd.rps" | awk '{print $1/$2}' | median)"
fi
if [ -n "${BASELINE:-}" ]; then
	b=$(median <"$work/base.rps")
	echo "refresh c=16 baseline $BASELINE: median $b req/s, ratio to refmin $(echo "$b $ref" | awk '{printf "%.2f", $1/$2}'); sessiond/baseline per round, median: $(paste "$work/sd.rps" "$work/base.rps" | awk '{print $1/$2}' | median)"
fi

# 2. Login, c=16, against the raw argon2id rate at the same parameters: with
# one hasher per core (the best raw rate) and, once, with 16 at once.
: >"$work/login.rps"; : >"$work/argon.rps"; : >"$work/baselogin.rps"
for r in $(seq "$rounds"); do
	vacuum sd base
	if [ -n "${BASELINE:-}" ]; then
		bout=$(bench 18170 login 16)
		echo "$bout" | jq -r .rps >>"$work/baselogin.rps"
		echo "round $r baseline login: $(echo "$bout" | jq -c '{rps, p99_ms, errors}')"
	fi
	out=$(bench 18180 login 16)
	echo "$out" | jq -r .rps >>"$work/login.rps"
	raw=$("$work/argonrate" -c "$(nproc)" -d "$dur")
	echo "$raw" | awk '{print $(NF-1)}' >>"$work/argon.rps"
	echo "round $r login: $(echo "$out" | jq -c '{rps, p99_ms, errors}')  raw: $raw"
done
echo "raw at c=16: $("$work/argonrate" -c 16 -d "$dur")"
echo "raw, reusing memory as sessiond does: $("$work/argonrate" -reuse -c "$(nproc)" -d "$dur")"
lg=$(median <"$work/login.rps"); ar=$(median <"$work/argon.rps")
echo "login c=16 median: sessiond $lg logins/s, raw argon2id $ar hashes/s, ratio $(echo "$lg $ar" | awk '{printf "%.2f", $1/$2}')"
if [ -n "${BASELINE:-}" ]; then
	b=$(median <"$work/baselogin.rps")
	echo "login c=16 baseline $BASELINE: median $b logins/s, ratio to raw $(echo "$b $ar" | awk '{printf "%.2f", $1/$2}'); sessiond/baseline per round, median: $(paste "$work/login.rps" "$work/baselogin.rps" | awk '{print $1/$2}' | median)"
	kill "$(cat "$work/base.pid")"
fi
kill "$(cat "$work/sd.pid")"

# 3. Peak resident memory (VmHWM) of a fresh sessiond under c=256 loads. The
# load tool first signs up and logs in its 256 users; for the refresh load the
# peak is reset (clear_refs 5) once those logins are done and the hashing
# slots have handed their memory back (a second after the last hash), so it
# is the refresh load's own.
metric() { curl -s "http://127.0.0.1:$(($1 + 1000))/metrics" | awk -v m="$2" '$1 == m {print $2}'; } # API port, series
for op in refresh login; do
	start_sessiond 18181 "mem_$op"
	wait_up 18181 healthz
	pid=$(cat "$work/mem_$op.pid")
	# A c=256 login load is mostly 503s (the hashing slots are full, by
	# design), so bench exits non-zero; its figures are still the point.
	{ bench 18181 "$op" 256 >"$work/mem_$op.json" || true; } &
	bpid=$!
	if [ "$op" = refresh ]; then
		# At least 256: a set-up login whose answer came too late for the
		# load tool is tried again, and counts twice here. Bounded, so a
		# set-up that never finishes ends the wait rather than the script.
		waited=0
		until [ "$(metric 18181 'sessiond_logins_total{code="ok"}' | cut -d. -f1)" -ge 256 ] 2>/dev/null || [ $waited -ge 900 ]; do sleep 0.2; waited=$((waited + 1)); done
		until [ "$(metric 18181 sessiond_password_hash_memory_bytes)" = 0 ] || [ $waited -ge 900 ]; do sleep 0.2; waited=$((waited + 1)); done
		[ $waited -lt 900 ] || echo "memory c=256 refresh: set-up did not finish in 180 s; the peak below includes it"
		echo 5 >"/proc/$pid/clear_refs"
	fi
	wait "$bpid"
	hwm=$(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$pid/status")
	echo "memory c=256 $op: peak RSS $hwm; $(jq -c '{rps: (.rps|floor), p99_ms, errors}' "$work/mem_$op.json")"
	kill "$pid"
done
