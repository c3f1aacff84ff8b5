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
# session, and 10 idle seconds (the background loops' share).
set -euo pipefail
cd "$(dirname "$0")/.."
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
go build -o "$w/this" ./cmd/sessiond
names=(this)
if [ -n "${1:-}" ]; then (cd "$1" && go build -o "$w/other" ./cmd/sessiond); names+=(other); fi
measure() { # name port
	local v=$1 u=http://127.0.0.1:$2 vp pid rt t0
	GODEBUG=asyncpreemptoff=1 SESSIOND_ADDR=127.0.0.1:$2 SESSIOND_PUBLIC_URL=$u SESSIOND_DATABASE_URL=sqlite:$w/$v.db \
		valgrind --tool=callgrind --callgrind-out-file="$w/cg.$v.%p" "$w/$v" >"$w/$v.log" 2>&1 &
	vp=$!
	for _ in $(seq 600); do curl -sf "$u/healthz" -o /dev/null && break; sleep 0.5; done
	post() { curl -s -X POST -H 'Content-Type: application/json' -A 'callgrind/1.0' "$u$1" -d "$2"; }
	local pw='correct horse battery staple' login='{"email":"a@example.com","password":"correct horse battery staple"}'
	post /v1/signup "{\"email\":\"a@example.com\",\"password\":\"$pw\"}" >/dev/null
	for _ in 1 2 3 4 5 6; do post /v1/login "$login" >/dev/null; done
	pid=$(pgrep -f "callgrind.*$w/$v\$" | head -1)
	callgrind_control -z "$pid" >/dev/null
	for _ in $(seq 10); do post /v1/login "$login" >"$w/$v.login.json"; done
	callgrind_control -d login "$pid" >/dev/null
	callgrind_control -z "$pid" >/dev/null
	rt=$(jq -r .refresh_token "$w/$v.login.json")
	t0=$(date +%s.%N)
	for _ in $(seq 200); do rt=$(post /v1/refresh "{\"refresh_token\":\"$rt\"}" | jq -r .refresh_token); done
	callgrind_control -d refresh "$pid" >/dev/null
	echo "$v: refresh window $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1-$2}') s"
	callgrind_control -z "$pid" >/dev/null
	sleep 10
	callgrind_control -d idle "$pid" >/dev/null
	kill "$vp"; wait "$vp" 2>/dev/null || true
	for f in "$w"/cg."$v".*.[0-9]; do echo "$v $(grep -m1 '^desc: Trigger' "$f" | sed 's/desc: Trigger: dump //'): $(grep -m1 '^summary:' "$f" | cut -d' ' -f2) instructions"; done
}
port=18950
for v in "${names[@]}"; do port=$((port + 1)); measure "$v" "$port" & done
wait
