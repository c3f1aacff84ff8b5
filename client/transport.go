package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTPClient returns an *http.Client, on the Options' one, that attaches
// this login's access token to every request to sessiond's origin or one of
// Options.TokenOrigins, refreshes it shortly before it expires, and on a
// 401 from them refreshes once and retries (when the request body can be
// replayed, that is when GetBody is set, as http.NewRequest does for
// in-memory bodies). Requests to other origins, redirects included, go out
// untouched.
func (c *Client) HTTPClient() *http.Client {
	hc := *c.hc
	hc.Transport = c.Transport(c.hc.Transport)
	return &hc
}

// Transport wraps base (nil: http.DefaultTransport) as HTTPClient does.
func (c *Client) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, base: base}
}

type transport struct {
	c    *Client
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// net/http drops Authorization from a redirect to another host only
	// when the first request carried it; this transport adds it to each
	// request it sees, redirects included, so it must judge each one.
	if !t.c.origins[origin(req.URL)] {
		return t.base.RoundTrip(req)
	}
	at, err := t.c.accessToken(req.Context(), "", false)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.base.RoundTrip(withToken(req, at, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable {
		return resp, err
	}
	// The AT was refused: revoked keys, a clock ahead of ours, or a token
	// that expired on the way. Refresh once (unless another request already
	// has) and retry once; a second 401 is the answer.
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	fresh, err := t.c.accessToken(req.Context(), at, false)
	if err != nil {
		if body != nil {
			body.Close()
		}
		var e *Error
		if errors.As(err, &e) || errors.Is(err, ErrNoSession) {
			return resp, nil // the session is over: the 401 is the true answer
		}
		resp.Body.Close()
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.base.RoundTrip(withToken(req, fresh, body))
}

// origin is u's scheme, host and port, spelled one way (RFC 6454): lower
// case, the default port written out. It is "" for a URL that has none.
func origin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if host == "" {
		return ""
	}
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		default:
			return ""
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func withToken(req *http.Request, at string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+at)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// accessToken returns an AT fit to send: the current one unless it expires
// within the refresh margin, equals stale (it was just refused), or force.
// Otherwise it refreshes, or waits for the refresh under way, so that any
// number of concurrent callers cause a single /v1/refresh.
func (c *Client) accessToken(ctx context.Context, stale string, force bool) (string, error) {
	c.mu.Lock()
	if c.tok.RefreshToken == "" && c.tok.AccessToken == "" {
		c.mu.Unlock()
		return "", ErrNoSession
	}
	call := c.refreshing
	if call == nil {
		// An AT other than stale is one someone else refreshed since this
		// caller sent stale: use it, unless it too is about to expire.
		at := c.tok.AccessToken
		if !force && at != "" && at != stale && c.opts.Now().Before(c.tok.AccessExpiresAt.Add(-c.margin())) {
			c.mu.Unlock()
			return at, nil
		}
		call = &refreshCall{done: make(chan struct{})}
		c.refreshing = call
		go c.runRefresh(ctx, call, c.tok.RefreshToken)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.at, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// margin is how long before expiry the AT is refreshed: RefreshBefore, but
// at most a quarter of the AT's lifetime, so short-lived ATs are used too.
func (c *Client) margin() time.Duration {
	return min(c.opts.RefreshBefore, c.tok.ExpiresIn/4)
}

// runRefresh performs call on a context detached from the caller that
// started it (others may be waiting), bounded by a timeout.
func (c *Client) runRefresh(ctx context.Context, call *refreshCall, rt string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var t Tokens
	err := ErrNoSession
	if rt != "" {
		t, err = c.tokenCall(ctx, "/v1/refresh", map[string]string{"refresh_token": rt})
	}
	c.mu.Lock()
	var e *Error
	switch {
	case err == nil:
		if t.RefreshToken == "" {
			t.RefreshToken = rt // rotation off: the RT stays
		}
		c.tok = t
	case errors.As(err, &e) && e.Status == http.StatusUnauthorized:
		c.tok = Tokens{} // the session is over; refreshing again cannot help
	}
	c.mu.Unlock()
	if err == nil {
		c.notify(t) // before the waiters go on, and before another refresh can start
	}
	c.mu.Lock()
	call.at, call.err = t.AccessToken, err
	c.refreshing = nil
	c.mu.Unlock()
	close(call.done)
}
