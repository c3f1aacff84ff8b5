package main

import (
	"flag"
	"log/slog"
	"sort"
	"strings"

	"github.com/sessiond/sessiond/internal/app"
)

// envOnly are SESSIOND_* variables that sessiond reads but no flag binds
// (a secret kept off the command line, say): a variable read elsewhere must
// be listed here, or serve warns that it is unknown.
var envOnly = []string{"SESSIOND_ENCRYPTION_KEY", "SESSIOND_SMTP_URL", benchAdminKeyEnv}

// knownEnv is every SESSIOND_* variable serve reads: one per flag of fs,
// and envOnly.
func knownEnv(fs *flag.FlagSet) []string {
	known := append([]string(nil), envOnly...)
	fs.VisitAll(func(f *flag.Flag) { known = append(known, app.EnvName(f.Name)) })
	sort.Strings(known)
	return known
}

// warnUnknownEnv logs one warning for each SESSIOND_* variable in environ
// that sessiond does not read, naming the closest one it does: a misspelled
// setting would otherwise be ignored without a word. SESSIOND_TEST_* are the
// test suite's own.
func warnUnknownEnv(logger *slog.Logger, environ []string, known []string) {
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "SESSIOND_") || strings.HasPrefix(name, "SESSIOND_TEST_") || contains(known, name) {
			continue
		}
		best, dist := "", -1
		for _, k := range known {
			if d := levenshtein(name, k); dist < 0 || d < dist {
				best, dist = k, d
			}
		}
		logger.Warn("unknown setting ignored", "variable", name, "did_you_mean", best)
	}
}

// levenshtein is the edit distance between a and b (insertions, deletions,
// substitutions of bytes; the names are ASCII).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
