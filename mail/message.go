package mail

import (
	"encoding/json"
	"errors"
	"fmt"
	netmail "net/mail"
	"time"

	"github.com/sessiond/sessiond"
)

// Kind names one of the mails sessiond sends.
type Kind string

// The mails sessiond sends.
const (
	// KindVerifyEmail asks the owner of an address to confirm it, after a
	// signup or an email change; it carries a token.
	KindVerifyEmail Kind = "verify_email"
	// KindResetPassword carries a password reset token.
	KindResetPassword Kind = "reset_password"
	// KindPasswordChanged tells the owner that the password changed, with
	// a way to reset it if they did not change it.
	KindPasswordChanged Kind = "password_changed"
	// KindEmailChanged tells the old address that a change to another one
	// was asked for.
	KindEmailChanged Kind = "email_changed"
	// KindAccountExists answers a signup with an address that already has
	// an account, so that signup reveals nothing; a reset token is
	// optional.
	KindAccountExists Kind = "account_exists"
)

// Message is the payload of a mail outbox row: what to say, not how. It
// is rendered when it is sent (the package doc says why).
type Message struct {
	Kind Kind   `json:"kind"`
	To   string `json:"to"`
	// Token is the secret a link carries, for the kinds that have one.
	Token string `json:"token,omitempty"`
	// ExpiresAt is when Token stops working. A mail whose token has
	// expired is not sent: its link would only disappoint.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// NewEmail is the address an email change goes to, for
	// KindEmailChanged; empty leaves it out of the notice.
	NewEmail string `json:"new_email,omitempty"`
	// At is when the change a notice reports happened.
	At time.Time `json:"at,omitzero"`
}

// VerifyEmail is the mail asking to's owner to confirm the address.
func VerifyEmail(to, token string, expires time.Time) Message {
	return Message{Kind: KindVerifyEmail, To: to, Token: token, ExpiresAt: expires}
}

// ResetPassword is the mail with a password reset link.
func ResetPassword(to, token string, expires time.Time) Message {
	return Message{Kind: KindResetPassword, To: to, Token: token, ExpiresAt: expires}
}

// PasswordChanged is the notice that the password changed at at.
func PasswordChanged(to string, at time.Time) Message {
	return Message{Kind: KindPasswordChanged, To: to, At: at}
}

// EmailChanged is the notice to the old address to that a change to
// newEmail was asked for at at; newEmail may be empty.
func EmailChanged(to, newEmail string, at time.Time) Message {
	return Message{Kind: KindEmailChanged, To: to, NewEmail: newEmail, At: at}
}

// AccountExists is the mail to an address someone tried to sign up with
// again. With a token (and its expiry) its link resets the password at
// once; without, it leads to the page that asks for a reset link.
func AccountExists(to, token string, expires time.Time) Message {
	return Message{Kind: KindAccountExists, To: to, Token: token, ExpiresAt: expires}
}

// needsToken tells the kinds whose mail is pointless without a token.
func (k Kind) needsToken() bool { return k == KindVerifyEmail || k == KindResetPassword }

func (k Kind) known() bool {
	switch k {
	case KindVerifyEmail, KindResetPassword, KindPasswordChanged, KindEmailChanged, KindAccountExists:
		return true
	}
	return false
}

// Validate checks that m can be rendered.
func (m Message) Validate() error {
	switch {
	case !m.Kind.known():
		return fmt.Errorf("unknown mail kind %q", m.Kind)
	case m.To == "":
		return errors.New("mail without recipient")
	case !bareAddress(m.To):
		return errors.New("mail recipient is not a bare address")
	case m.Kind.needsToken() && m.Token == "":
		return fmt.Errorf("%s mail without token", m.Kind)
	case m.Token != "" && m.ExpiresAt.IsZero():
		return fmt.Errorf("%s mail: token without expiry", m.Kind)
	}
	return nil
}

// bareAddress tells an address without display name or comments, which
// is what an outbox row's target and the SMTP envelope hold.
func bareAddress(s string) bool {
	a, err := netmail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// Expired reports whether m's token has expired at now; a message
// without a token never expires.
func (m Message) Expired(now time.Time) bool {
	return m.Token != "" && !now.Before(m.ExpiresAt)
}

// Encode is m as an outbox payload.
func (m Message) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Decode reads an outbox payload written by Encode.
func Decode(payload []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return Message{}, fmt.Errorf("decode mail payload: %w", err)
	}
	if err := m.Validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// NewOutboxMessage is the outbox row that sends m, caused by event
// eventID, written at now: insert it in the transaction that records the
// event. A mail with a token expires with it: undelivered by then, it is
// never sent and its payload, the token, is erased.
func NewOutboxMessage(m Message, eventID string, now time.Time) (*sessiond.OutboxMessage, error) {
	payload, err := m.Encode()
	if err != nil {
		return nil, err
	}
	msg := &sessiond.OutboxMessage{
		ID: sessiond.NewID(), Channel: sessiond.ChannelMail, Target: m.To, EventID: eventID,
		Payload: payload, CreatedAt: now,
	}
	if m.Token != "" {
		msg.ExpiresAt = m.ExpiresAt
	}
	return msg, nil
}
