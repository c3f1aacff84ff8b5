package client

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// secondFactors are the RFC 8176 amr values of a factor beyond a password:
// a one-time code, a hardware or software key (a passkey), or "mfa" itself.
var secondFactors = []string{"otp", "hwk", "swk", "mfa"}

// HasAMR reports whether the token's amr lists v (an RFC 8176 value such as
// "otp" or "hwk").
func (c *Claims) HasAMR(v string) bool { return slices.Contains(c.AMR, v) }

// UsedSecondFactor reports whether the user proved more than a password
// for this session: its amr lists a one-time code ("otp", which sessiond
// also uses for recovery codes), a key ("hwk", "swk": passkeys) or "mfa".
func (c *Claims) UsedSecondFactor() bool {
	for _, v := range secondFactors {
		if c.HasAMR(v) {
			return true
		}
	}
	return false
}

// AuthenticatedWithin reports whether the user last proved who they are
// (auth_time: login, second factor or reauthentication) no longer than d
// before now. A token without auth_time never is.
func (c *Claims) AuthenticatedWithin(d time.Duration, now time.Time) bool {
	return !c.AuthTime.IsZero() && !now.Before(c.AuthTime.Add(-time.Minute)) && now.Sub(c.AuthTime) <= d
}

// A Requirement is a condition on the verified claims of a request, for
// Require. It returns "" when c meets it, and otherwise what is missing.
type Requirement struct {
	check  func(c *Claims, now time.Time) string
	maxAge time.Duration // for the WWW-Authenticate challenge
}

// SecondFactor requires a session signed in with a second factor
// (Claims.UsedSecondFactor).
func SecondFactor() Requirement {
	return Requirement{check: func(c *Claims, _ time.Time) string {
		if c.UsedSecondFactor() {
			return ""
		}
		return "this needs a sign-in with a second factor"
	}}
}

// AMR requires the amr value v (Claims.HasAMR).
func AMR(v string) Requirement {
	return Requirement{check: func(c *Claims, _ time.Time) string {
		if c.HasAMR(v) {
			return ""
		}
		return fmt.Sprintf("this needs a sign-in with %q", v)
	}}
}

// AuthenticatedWithin requires a sign-in no older than d
// (Claims.AuthenticatedWithin).
func AuthenticatedWithin(d time.Duration) Requirement {
	return Requirement{maxAge: d, check: func(c *Claims, now time.Time) string {
		if c.AuthenticatedWithin(d, now) {
			return ""
		}
		return fmt.Sprintf("this needs a sign-in within the last %s", d)
	}}
}

// Require returns middleware that admits a request only if the claims
// Verifier.Middleware put in its context meet every requirement; put it
// inside Middleware:
//
//	mux.Handle("/billing", v.Middleware(client.Require(client.SecondFactor(),
//		client.AuthenticatedWithin(10*time.Minute))(billing)))
//
// Others get a 403 problem+json with code reauthentication_required and an
// RFC 9470 challenge (WWW-Authenticate: Bearer
// error="insufficient_user_authentication", with max_age when a recency
// requirement failed): the client signs in again, or reauthenticates at
// sessiond, and retries with the new access token. A request without
// claims (Require used without Middleware) gets 401.
func Require(reqs ...Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := ClaimsFromContext(r.Context())
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer`)
				writeProblem(w, http.StatusUnauthorized, "invalid_token", "no verified access token")
				return
			}
			now := time.Now()
			var missing []string
			var maxAge time.Duration
			for _, q := range reqs {
				if m := q.check(c, now); m != "" {
					missing = append(missing, m)
					if q.maxAge > 0 && (maxAge == 0 || q.maxAge < maxAge) {
						maxAge = q.maxAge
					}
				}
			}
			if len(missing) > 0 {
				detail := strings.Join(missing, "; ")
				challenge := `Bearer error="insufficient_user_authentication", error_description="` + detail + `"`
				if maxAge > 0 {
					challenge += ", max_age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
				}
				w.Header().Set("WWW-Authenticate", challenge)
				writeProblem(w, http.StatusForbidden, "reauthentication_required", detail)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
