#!/usr/bin/env bash
# Instructions per login and per refresh of sessiond on SQLite, counted by
# valgrind's callgrind: repeatable whatever else the machine does, so it
# compares two builds where throughput on a shared machine cannot.
#
#   bench/callgrind.sh              # this tree
#   bench/callgrind.sh OTHER_TREE   # also another checkout, for before/after
#
# Go's asynchronous preemption signals trip a callgrind assertion, hence
# GODEBUG=asyncpreemptoff=1. Counters are zeroed after six warm-up logins;
# then 10 logins (one user at the cap: each evicts), 200 refreshes of one
# session (and the time they took), and 10 idle seconds: the background
# loops' share, to subtract from the refresh window.
set -uo pipefail
cd "$(dirname "$0")/.."
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
go build -o "$W/this" ./cmd/sessiond || exit 1
names=(this)
if [ -n "${1:-}" ]; then (cd "$1" && go build -o "$W/other" ./cmd/sessiond) || exit 1; names+=(other); fi
measure() {
	v=$1; port=$2; u=http://127.0.0.1:$port
	GODEBUG=asyncpreemptoff=1 GOMAXPROCS=2 SESSIOND_ADDR=127.0.0.1:$port SESSIOND_PUBLIC_URL=$u SESSIOND_DATABASE_URL=sqlite:$W/$v.db valgrind --tool=callgrind --callgrind-out-file=$W/cg.$v.%p --dump-instr=no --collect-jumps=no $W/$v > $W/$v.log 2>&1 &
	vp=$!
	for i in $(seq 600); do curl -sf $u/healthz -o /dev/null && break; sleep 0.5; done
	post() { curl -s -X POST -H 'Content-Type: application/json' -A 'cg/1.0' "$u$1" -d "$2"; }
	pw='correct horse battery staple'
	post /v1/signup "{\"email\":\"a@example.com\",\"password\":\"$pw\"}" >/dev/null
	for i in 1 2 3 4 5 6; do post /v1/login "{\"email\":\"a@example.com\",\"password\":\"$pw\"}" > $W/$v.login.json; done
	pid=$(pgrep -f "callgrind.*$W/$v\$" | head -1)
	callgrind_control -z $pid >/dev/null
	for i in $(seq 10); do post /v1/login "{\"email\":\"a@example.com\",\"password\":\"$pw\"}" > $W/$v.login.json; done
	callgrind_control -d login $pid >/dev/null
	callgrind_control -z $pid >/dev/null
	rt=$(jq -r .refresh_token $W/$v.login.json)
	t0=$(date +%s.%N)
	for i in $(seq 200); do rt=$(post /v1/refresh "{\"refresh_token\":\"$rt\"}" | jq -r .refresh_token); done
	callgrind_control -d refresh $pid >/dev/null
	echo "$v refresh window: $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1-$2}') s"
	callgrind_control -z $pid >/dev/null
	sleep 10
	callgrind_control -d idle10s $pid >/dev/null
	[ "$rt" != null ] || echo "$v: refresh failed"
	kill $vp; wait $vp 2>/dev/null
	for f in $W/cg.$v.*.[0-9]; do echo "$v $(grep -m1 '^desc: Trigger' $f | sed 's/desc: Trigger: dump //'): $(grep -m1 '^summary:' $f | cut -d' ' -f2) instructions"; done
}
port=18950
for v in "${names[@]}"; do port=$((port + 1)); measure "$v" "$port" 2>&1 | grep -v '^sending command' & done
wait
