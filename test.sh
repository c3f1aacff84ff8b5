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

# The browser SDK (js/): its unit tests wherever node is; its browser tests,
# which drive Chromium against a sessiond built here, where playwright-core
# (cd js && npm ci) and /usr/bin/chromium are too.
if command -v node >/dev/null 2>&1; then
	node --test js/test/unit
	# The shipped .d.ts type-checks under --strict, used as a page uses it.
	if [ -x js/node_modules/.bin/tsc ]; then
		js/node_modules/.bin/tsc -p js/test/types
	fi
	if [ -d js/node_modules/playwright-core ] && [ -x /usr/bin/chromium ]; then
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		go build -o "$tmp/sessiond" ./cmd/sessiond
		(cd js && SESSIOND_BIN="$tmp/sessiond" node --test --test-concurrency=1 test/browser)
	else
		echo "test.sh: js/node_modules/playwright-core or /usr/bin/chromium is missing: the SDK's browser tests skip (cd js && npm ci)"
	fi
else
	echo "test.sh: no node: the browser SDK's tests skip"
fi
