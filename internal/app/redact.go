package app

import (
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// redacted stands in for a hidden secret.
const redacted = "xxxxx"

// RedactURL hides every secret a URL (a database or mail server URL) may
// carry, before it is logged or printed: the userinfo password, and the
// value of every query parameter that holds one. libpq and pgx take the
// password itself and the client key's passphrase as parameters (password,
// sslpassword); any parameter whose name says pass, pwd, secret or token is
// hidden too, so a setting added later is not shown by mistake. A string
// with "://" that does not parse as a URL is shown as its scheme alone,
// since where its password ends cannot be told. Keyword/value strings
// (host=… password=…) have their secret values hidden likewise.
func RedactURL(s string) string {
	scheme, rest, isURL := strings.Cut(s, "://")
	if !isURL {
		return secretKeyword.ReplaceAllString(s, "${1}="+redacted)
	}
	u, err := url.Parse(s)
	if err != nil || strings.ContainsAny(rest, " \t\r\n") {
		return scheme + "://" + redacted + " (not a valid URL; shown no further)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	if u.RawQuery != "" {
		pairs := strings.Split(u.RawQuery, "&")
		for i, p := range pairs {
			k, _, hasValue := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); (err != nil || isSecretName(name)) && hasValue {
				pairs[i] = k + "=" + redacted
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
	}
	if u.Fragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	return u.String()
}

// secretKeyword matches a secret's keyword and value in a libpq
// keyword/value string, the value plain or single-quoted.
var secretKeyword = regexp.MustCompile(`(?i)\b(\w*(?:pass|pwd|secret|token)\w*)\s*=\s*(?:'(?:[^'\\]|\\.)*'|[^\s']\S*|'.*)`)

// isSecretName reports whether a parameter or setting of this name holds a
// secret.
func isSecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"pass", "pwd", "secret", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactArgs is a command line as it may be shown (pprof's cmdline): the
// value of every flag whose name ends in key or says pass, secret or token is hidden,
// and every other argument has its URL secrets hidden (RedactURL), so
// `-database-url postgres://u:pw@h/db` and `-encryption-key=…` show no
// secret.
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	hideNext := false
	for i, a := range args {
		switch {
		case hideNext:
			out[i], hideNext = redacted, false
		case strings.HasPrefix(a, "-") && a != "-" && a != "--":
			name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			n := strings.ToLower(name)
			secret := isSecretName(n) || strings.HasSuffix(n, "key") || strings.HasSuffix(n, "keys")
			switch {
			case secret && hasValue:
				out[i] = a[:len(a)-len(value)] + redacted
			case secret:
				out[i], hideNext = a, true
			case hasValue:
				out[i] = a[:len(a)-len(value)] + RedactURL(value)
			default:
				out[i] = a
			}
		default:
			out[i] = RedactURL(a)
		}
	}
	return out
}

// Cmdline replaces net/http/pprof's handler of /debug/pprof/cmdline, which
// shows the command line as it is, with one showing it through RedactArgs.
func Cmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(strings.Join(RedactArgs(os.Args), "\x00")))
}
