#!/usr/bin/env bash
# Every test of sessiond: the README's test command, and what .ci/run runs.
#
# The race detector runs where concurrency lives, which is nearly every
# package (stores, use cases, HTTP, tokens, the client, hashing); the few
# packages without goroutines of their own run without it, which saves
# their instrumented build and run. A new package gets -race by default.
#
# The first run on a machine takes long (11 minutes once, on 2 cores): it
# compiles every dependency with the race instrumentation, the pure-Go
# SQLite (modernc.org/sqlite) above all. Later runs reuse Go's build cache
# and spend their time in the tests themselves.
set -euo pipefail
cd "$(dirname "$0")"

if [ -z "${SESSIOND_TEST_POSTGRES_URL:-}" ]; then
	echo "test.sh: SESSIOND_TEST_POSTGRES_URL is not set: the PostgreSQL tests skip" \
		"(e.g. SESSIOND_TEST_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/test?sslmode=disable')"
fi

mod=github.com/sessiond/sessiond
# Packages whose code starts no goroutine and shares no state: plain go test.
plain="$mod $mod/api $mod/web $mod/internal/pgtest"

race=()
for p in $(go list ./...); do
	case " $plain " in
	*" $p "*) ;;
	*) race+=("$p") ;;
	esac
done
# shellcheck disable=SC2086 # $plain is a list of package paths
go test -count=1 $plain
go test -race -count=1 "${race[@]}"
