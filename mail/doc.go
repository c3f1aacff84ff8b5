// Package mail sends sessiond's account mail: email verification,
// password reset, and the notices of a changed password or address and of
// a signup with an address that already has an account. It provides the
// outbox.Sender of the mail channel, the templates, and the parsing of
// SESSIOND_SMTP_URL and SESSIOND_MAIL_FROM.
//
// A use case that mails someone writes an outbox row in the transaction
// that records what caused it: NewOutboxMessage(VerifyEmail(to, token,
// expires), eventID, now). The outbox worker later hands the row to
// Sender.Send, which renders it and submits it over SMTP (go-mail).
//
// The row holds a Message, a small JSON document of what to say (kind,
// address, token and its expiry), not the rendered mail. Rendering at send
// time applies the templates, product name and public URL in force when
// the mail leaves, not those of the moment it was queued; the token sits
// in one field that the store can erase once the mail is delivered or the
// token has expired, instead of inside a body; and a mail whose token has
// expired while it waited for a retry is failed instead of sent.
//
// Connections are encrypted: smtps:// speaks TLS from the start, and
// smtp:// requires STARTTLS, so a server (or an attacker in between) that
// does not offer it gets neither the credentials nor the mail. Only a
// loopback host is spoken to in the clear. Failures are sorted for the
// outbox: a recipient or message refused for good (5xx to RCPT or DATA)
// is permanent, everything else is retried.
//
// Start reading at Sender.Send; the templates are in templates/, one pair
// (.txt, .html) per Kind. Package mailtest runs an SMTP server in-process
// for tests.
package mail
