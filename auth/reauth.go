package auth

import (
	"time"

	"github.com/sessiond/sessiond"
)

// DefaultReauthWindow is how recent a sign-in must be for a sensitive
// change (password, email, deleting the account, second factors,
// passkeys) that does not carry the credential itself.
const DefaultReauthWindow = 10 * time.Minute

var errReauth = sessiond.Errorf(sessiond.CodeReauthRequired, "this change needs a recent sign-in: sign in again or reauthenticate first")

// recentAuth refuses a sensitive change unless the principal's session
// proved who its user is within the reauthentication window. The session's
// own auth time counts, not the token's, so a reauthentication takes
// effect before the next refresh.
func (s *Service) recentAuth(p *sessiond.Principal, now time.Time) error {
	if p.AuthTime.IsZero() || now.Sub(p.AuthTime) > s.reauth {
		return errReauth
	}
	return nil
}
