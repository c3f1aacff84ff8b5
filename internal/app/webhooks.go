package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/seal"
)

// A webhook secret is stored as text, in a column that cannot hold the
// sealed value's bytes: sealed, it is sealedTextPrefix and the base64 of
// those bytes. A whsec_ secret in the clear never starts with it.
const sealedTextPrefix = "sdseal1:"

func webhookSecretContext(id string) string { return sessiond.SecretKindWebhook + "/" + id }

func sealText(keys *seal.Keyring, context, plaintext string) string {
	if !keys.Enabled() {
		return plaintext
	}
	return sealedTextPrefix + base64.RawStdEncoding.EncodeToString(keys.Seal(context, []byte(plaintext)))
}

// openText returns the plaintext of stored, and the sealed bytes it held
// (nil for a value in the clear).
func openText(keys *seal.Keyring, context, stored string) (plaintext string, sealed []byte, err error) {
	rest, ok := strings.CutPrefix(stored, sealedTextPrefix)
	if !ok {
		return stored, nil, nil
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || !seal.IsSealed(b) {
		return "", nil, &seal.Error{Context: context, Err: fmt.Errorf("stored value is not a sealed value")}
	}
	p, _, err := keys.Open(context, b)
	if err != nil {
		return "", nil, err
	}
	return string(p), b, nil
}

func (s *sealedStore) openEndpoint(w *sessiond.WebhookEndpoint) error {
	p, sealed, err := openText(s.keys, webhookSecretContext(w.ID), w.Secret)
	if err != nil {
		return err
	}
	if sealed == nil && s.keys.Enabled() {
		s.clear.Add(1)
	}
	w.Secret = p
	return nil
}

func (s *sealedStore) CreateWebhookEndpoint(ctx context.Context, w *sessiond.WebhookEndpoint) error {
	c := *w
	c.Secret = sealText(s.keys, webhookSecretContext(w.ID), w.Secret)
	return s.Store.CreateWebhookEndpoint(ctx, &c)
}

func (s *sealedStore) WebhookEndpoint(ctx context.Context, id string) (*sessiond.WebhookEndpoint, error) {
	w, err := s.Store.WebhookEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.openEndpoint(w); err != nil {
		return nil, err
	}
	return w, nil
}

func (s *sealedStore) WebhookEndpoints(ctx context.Context) ([]sessiond.WebhookEndpoint, error) {
	ws, err := s.Store.WebhookEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		if err := s.openEndpoint(&ws[i]); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

// resealWebhookSecret is ReencryptSecrets' step for one endpoint's secret:
// nil when it is sealed by the newest key already.
func resealWebhookSecret(keys *seal.Keyring, v sessiond.StoredSecret) ([]byte, error) {
	context := webhookSecretContext(v.Name)
	p, sealed, err := openText(keys, context, string(v.Value))
	if err != nil {
		return nil, err
	}
	if sealed != nil && keys.SealedByNewest(sealed) {
		return nil, nil
	}
	return []byte(sealText(keys, context, p)), nil
}
