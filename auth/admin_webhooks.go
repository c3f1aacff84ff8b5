package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// The admin API's limits. A page is at most MaxListLimit items, so that no
// call holds the database for long.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
	// maxDeliveries is how many of an endpoint's newest deliveries are listed.
	maxDeliveries = 100
	maxWebhookURL = 2048
	// adminKeyTouchEvery bounds how often a key's last use is written, so
	// that a busy backend's calls are not each a write.
	adminKeyTouchEvery = time.Minute
	// maxAdminKey bounds a presented key before it is hashed; a real one
	// is 49 characters.
	maxAdminKey = 128
)

// adminDeps is what the admin use cases need beyond the rest of Service.
type adminDeps struct {
	store    sessiond.AdminStore
	checkURL func(ctx context.Context, url string) error
	notify   func()
}

func (s *Service) adminStore() (sessiond.AdminStore, error) {
	if s.admin.store == nil {
		return nil, sessiond.Internal("admin API", fmt.Errorf("no admin store configured"))
	}
	return s.admin.store, nil
}

// ListLimit applies the admin API's page size rule: 0 is the default,
// anything outside 1..MaxListLimit is CodeInvalidRequest.
func ListLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultListLimit, nil
	case n < 1 || n > MaxListLimit:
		return 0, sessiond.Errorf(sessiond.CodeInvalidRequest, "limit must be between 1 and %d", MaxListLimit)
	}
	return n, nil
}

// AuthenticateAdmin returns the actor of an admin key. The key is looked up
// by its hash, so the database never sees it, and the hashes are compared
// again in constant time, so that an index lookup that matched by some
// collation rule cannot admit a different key. Unknown and revoked keys are
// one answer, CodeInvalidToken.
func (s *Service) AuthenticateAdmin(ctx context.Context, key string) (sessiond.Actor, error) {
	invalid := sessiond.Errorf(sessiond.CodeInvalidToken, "unknown or revoked admin key")
	st, err := s.adminStore()
	if err != nil {
		return sessiond.Actor{}, err
	}
	if len(key) > maxAdminKey || !strings.HasPrefix(key, sessiond.AdminKeyPrefix) {
		return sessiond.Actor{}, invalid
	}
	hash := sessiond.HashAdminKey(key)
	k, err := st.AdminKeyByHash(ctx, hash)
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return sessiond.Actor{}, invalid
	}
	if err != nil {
		return sessiond.Actor{}, err
	}
	if subtle.ConstantTimeCompare(k.Hash, hash) != 1 || !k.RevokedAt.IsZero() {
		return sessiond.Actor{}, invalid
	}
	if now := s.now(); now.Sub(k.LastUsedAt) >= adminKeyTouchEvery {
		if err := st.TouchAdminKey(ctx, k.Name, now); err != nil {
			// Bookkeeping only: the call itself may go on.
			s.logger.WarnContext(ctx, "recording an admin key's last use", "key", k.Name, "error", err)
		}
	}
	return sessiond.Actor{KeyName: k.Name}, nil
}

// RecordAdminRequest records one admin call as an admin.request event,
// fanned out to its subscribers in the same transaction like every event.
func (s *Service) RecordAdminRequest(ctx context.Context, r sessiond.AdminRequest) error {
	o := Origin{IP: r.IP, UserAgent: r.UserAgent, Actor: r.Actor.KeyName}
	e := o.event(sessiond.EventAdminRequest, "", "", map[string]any{"method": r.Method, "path": r.Path, "status": r.Status})
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error { return record(tx, s.now(), e) })
	if err == nil && s.admin.notify != nil {
		s.admin.notify()
	}
	return err
}

// Events lists events oldest first, a page at a time.
func (s *Service) Events(ctx context.Context, q sessiond.EventQuery) ([]sessiond.Event, string, error) {
	st, err := s.adminStore()
	if err != nil {
		return nil, "", err
	}
	if q.Limit, err = ListLimit(q.Limit); err != nil {
		return nil, "", err
	}
	if q.Type != "" && !slices.Contains(sessiond.EventTypes, q.Type) {
		return nil, "", sessiond.Errorf(sessiond.CodeInvalidRequest, "unknown event type %q", q.Type)
	}
	limit := q.Limit
	q.Limit++ // one more tells whether there is a next page
	events, err := st.ListEvents(ctx, q)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = events[limit-1].ID
	}
	return events, next, nil
}

// webhookSecretPrefix marks a Standard Webhooks signing secret.
const webhookSecretPrefix = "whsec_"

// newWebhookSecret is whsec_ and the base64 of 32 random bytes, the
// HMAC-SHA256 key size, as the Standard Webhooks libraries read it.
func newWebhookSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// CreateWebhook registers an endpoint for events (known types, or "*"
// alone for all). Its URL passes the SSRF rule (WebhookURLCheck) now, and
// the sender's dialer checks the address again at every delivery.
func (s *Service) CreateWebhook(ctx context.Context, a sessiond.Actor, url string, events []string) (*sessiond.WebhookEndpoint, error) {
	st, err := s.adminStore()
	if err != nil {
		return nil, err
	}
	switch {
	case url == "":
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"url\" is required")
	case len(url) > maxWebhookURL:
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL is longer than %d bytes", maxWebhookURL)
	case s.admin.checkURL == nil:
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "webhook URLs are not accepted by this server")
	}
	if err := s.admin.checkURL(ctx, url); err != nil {
		return nil, err
	}
	events, err = webhookEvents(events)
	if err != nil {
		return nil, err
	}
	w := &sessiond.WebhookEndpoint{ID: sessiond.NewID(), URL: url, Events: events, Secret: newWebhookSecret(), CreatedAt: s.now()}
	if err := st.CreateWebhookEndpoint(ctx, w); err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "webhook endpoint created", "webhook_id", w.ID, "actor", a.KeyName)
	return w, nil
}

// webhookEvents checks a subscription and returns it without duplicates.
func webhookEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "field \"events\" must list event types, or be [\"*\"] for all")
	}
	var out []string
	for _, e := range events {
		switch {
		case e == "*" && len(events) == 1:
		case e == "*":
			return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "\"*\" subscribes to every event; it must stand alone")
		case !slices.Contains(sessiond.EventTypes, e):
			return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "unknown event type %q", e)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Webhooks lists the endpoints, oldest first, without their secrets.
func (s *Service) Webhooks(ctx context.Context) ([]sessiond.WebhookEndpoint, error) {
	st, err := s.adminStore()
	if err != nil {
		return nil, err
	}
	ws, err := st.WebhookEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		ws[i].Secret = ""
	}
	return ws, nil
}

// DeleteWebhook removes an endpoint and its pending deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, a sessiond.Actor, id string) error {
	st, err := s.adminStore()
	if err != nil {
		return err
	}
	if err := st.DeleteWebhookEndpoint(ctx, id); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "webhook endpoint deleted", "webhook_id", id, "actor", a.KeyName)
	return nil
}

// WebhookDeliveries lists an endpoint's newest deliveries, newest first.
func (s *Service) WebhookDeliveries(ctx context.Context, id string) ([]sessiond.Delivery, error) {
	st, err := s.adminStore()
	if err != nil {
		return nil, err
	}
	if _, err := st.WebhookEndpoint(ctx, id); err != nil {
		return nil, err
	}
	return st.WebhookDeliveries(ctx, id, maxDeliveries)
}

// Redeliver sends an event to an endpoint again, with a fresh schedule of
// retries; a delivery still pending is left to its schedule.
func (s *Service) Redeliver(ctx context.Context, a sessiond.Actor, webhookID, eventID string) error {
	st, err := s.adminStore()
	if err != nil {
		return err
	}
	if _, err := st.WebhookEndpoint(ctx, webhookID); err != nil {
		return err
	}
	if err := st.RedeliverOutbox(ctx, sessiond.ChannelWebhook, webhookID, eventID, s.now()); err != nil {
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return sessiond.Errorf(sessiond.CodeNotFound, "event %q was never sent to this webhook", eventID)
		}
		return err
	}
	s.logger.InfoContext(ctx, "webhook redelivery", "webhook_id", webhookID, "event_id", eventID, "actor", a.KeyName)
	if s.admin.notify != nil {
		s.admin.notify()
	}
	return nil
}

var _ sessiond.AdminAuthenticator = (*Service)(nil)
