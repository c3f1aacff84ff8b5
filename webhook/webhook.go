// Package webhook delivers events to operators' HTTP endpoints, following
// the Standard Webhooks specification: Sender is the outbox.Sender of the
// webhook channel, Sign makes the signature headers, and ValidateURL and
// the sender's dialer keep deliveries away from internal addresses (SSRF).
//
// Start reading at Sender.Send.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks signing secret.
const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: whsec_ and the base64 of 32
// random bytes, the HMAC-SHA256 key size.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// Sign returns the Standard Webhooks headers for body sent as message id at
// ts: the signature is v1,<base64 HMAC-SHA256 of id.timestamp.body> under
// secret. A message is signed afresh at every attempt, so its timestamp is
// the attempt's and a receiver's replay window applies to each.
func Sign(secret, id string, ts time.Time, body []byte) (http.Header, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("sign webhook: bad secret: %w", err)
	}
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		return nil, fmt.Errorf("sign webhook: %w", err)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h, nil
}
