package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/outbox"
)

// Endpoints finds a webhook endpoint's URL and secret; sessiond.EventStore
// is one.
type Endpoints interface {
	// WebhookEndpoint returns endpoint id; CodeNotFound if it is gone.
	WebhookEndpoint(ctx context.Context, id string) (*sessiond.WebhookEndpoint, error)
}

// Options tune a Sender.
type Options struct {
	// AllowPrivate lets deliveries reach internal addresses (loopback,
	// private networks): for endpoints inside the operator's own network.
	AllowPrivate bool
	// Timeout bounds one delivery, from dial to the response's headers;
	// default 10s.
	Timeout time.Duration
	// Clock gives each attempt's timestamp; default the system clock.
	Clock sessiond.Clock
}

// Sender is the outbox.Sender of the webhook channel.
type Sender struct {
	endpoints Endpoints
	client    *http.Client
	opt       Options
}

var _ outbox.Sender = (*Sender)(nil)

// maxResponse bounds how much of a receiver's response is read (and thrown
// away) to keep the connection for reuse.
const maxResponse = 64 << 10

// NewSender returns a Sender that looks endpoints up in endpoints.
func NewSender(endpoints Endpoints, opt Options) *Sender {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.Clock == nil {
		opt.Clock = sessiond.SystemClock
	}
	dialer := &net.Dialer{Timeout: opt.Timeout}
	if !opt.AllowPrivate {
		dialer.Control = dialControl
	}
	transport := &http.Transport{
		// No proxy: through one, the dialer would check the proxy's
		// address, not the receiver's.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   opt.Timeout,
		ResponseHeaderTimeout: opt.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   opt.Timeout,
		// A redirect is not followed: it could lead past the address
		// checks, and a receiver that moved should be re-registered. The
		// 3xx is returned, and retried like any other non-2xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Sender{endpoints: endpoints, client: client, opt: opt}
}

// Send POSTs m's payload (the event's JSON) to its endpoint, signed for
// this attempt. Any 2xx is delivered. Every other status is retried, 4xx
// included: Standard Webhooks receivers answer 4xx while misconfigured
// (a rotated secret, a deploy in progress) as often as for good, and the
// retries are bounded. An endpoint that no longer exists, or whose URL is
// no longer acceptable, fails at once.
func (s *Sender) Send(ctx context.Context, m sessiond.OutboxMessage) error {
	ep, err := s.endpoints.WebhookEndpoint(ctx, m.Target)
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		return outbox.Permanent("endpoint deleted", err)
	}
	if err != nil {
		return outbox.Retry("endpoint lookup failed", err)
	}
	// Names are left to the dialer, which checks the address they resolve
	// to at this moment.
	if _, err := checkURL(ep.URL, s.opt.AllowPrivate, false); err != nil {
		return outbox.Permanent("URL refused", err)
	}
	headers, err := Sign(ep.Secret, m.EventID, s.opt.Clock(), m.Payload)
	if err != nil {
		return outbox.Permanent("bad secret", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return outbox.Permanent("URL refused", err)
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sessiond-webhooks")
	resp, err := s.client.Do(req)
	if err != nil {
		return outbox.Retry(transportStatus(err), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return outbox.Retry(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
	}
	return nil
}

// transportStatus names a failure to get a response, for operators.
func transportStatus(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errBlockedAddress):
		return "address refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "connection failed"
}
