package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sessiond/sessiond/dpop"
)

// HTTPClient returns an *http.Client, on the Options' one, that attaches
// this login's access token to every request to sessiond's origin or one of
// Options.TokenOrigins, refreshes it shortly before it expires, and on a
// 401 from them refreshes once and retries (when the request body can be
// replayed, that is when GetBody is set, as http.NewRequest does for
// in-memory bodies). Requests to other origins, redirects included, go out
// untouched.
//
// A DPoP-bound access token (Options.DPoP) goes as "Authorization: DPoP"
// with a fresh proof for the request's method and URL and the token's hash;
// the URL must be the one the service checks proofs against (its
// VerifierOptions.PublicURL). An answer that asks for a DPoP nonce
// (use_dpop_nonce) is followed by one retry with it, and the latest nonce
// each origin gave goes into the next proofs to it.
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
	at, err := t.c.currentToken(req.Context(), "", false)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	b := &bodies{req: req}
	resp, err := t.c.send(t.base.RoundTrip, req, b, at)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !b.replayable() || proofRefused(resp) {
		return resp, err
	}
	// The AT was refused: revoked keys, a clock ahead of ours, or a token
	// that expired on the way. Refresh once (unless another request already
	// has) and retry once; a second 401 is the answer. (A refused proof is
	// not the token's fault: a new token would not change it.)
	fresh, err := t.c.currentToken(req.Context(), at.token, false)
	if err != nil {
		var e *Error
		if errors.As(err, &e) || errors.Is(err, ErrNoSession) {
			return resp, nil // the session is over: the 401 is the true answer
		}
		resp.Body.Close()
		return nil, err
	}
	discard(resp)
	return t.c.send(t.base.RoundTrip, req, b, fresh)
}

// accessToken is an access token and whether it is DPoP-bound (then sent
// as "Authorization: DPoP" with a proof).
type accessToken struct {
	token string
	dpop  bool
}

// bodies hands out a request's body for each attempt: its own the first
// time, GetBody's after.
type bodies struct {
	req  *http.Request
	used bool
}

// replayable reports whether the body can be sent more than once.
func (b *bodies) replayable() bool {
	return b.req.Body == nil || b.req.Body == http.NoBody || b.req.GetBody != nil
}

func (b *bodies) next() (io.ReadCloser, error) {
	switch {
	case !b.used:
		b.used = true
		return b.req.Body, nil
	case b.req.Body == nil || b.req.Body == http.NoBody:
		return b.req.Body, nil
	case b.req.GetBody == nil:
		return nil, errors.New("the request body cannot be sent again")
	}
	return b.req.GetBody()
}

// send sends req through rt with at (when set) in its Authorization header
// and, when the Client has a DPoP key and at is bound or absent, a fresh
// proof for it with the latest nonce req's origin gave. It remembers the
// DPoP-Nonce of the answer, and if the answer asks for a nonce
// (use_dpop_nonce, RFC 9449 §8) sends the request once more with it.
func (c *Client) send(rt func(*http.Request) (*http.Response, error), req *http.Request, b *bodies, at accessToken) (*http.Response, error) {
	for retry := false; ; retry = true {
		body, err := b.next()
		if err != nil {
			return nil, err
		}
		r := req.Clone(req.Context())
		r.Body = body
		switch {
		case at.token == "":
		case at.dpop:
			r.Header.Set("Authorization", "DPoP "+at.token)
		default:
			r.Header.Set("Authorization", "Bearer "+at.token)
		}
		key, sent := c.opts.DPoP, ""
		if key != nil && (at.token == "" || at.dpop) {
			sent = c.nonce(r.URL)
			claims := dpop.Claims{Method: r.Method, URL: r.URL.String(), Nonce: sent}
			if at.dpop {
				claims.AccessToken = at.token
			}
			p, err := key.Proof(claims)
			if err != nil {
				closeBody(r)
				return nil, fmt.Errorf("DPoP proof: %w", err)
			}
			r.Header.Set(dpop.Header, p)
		}
		resp, err := rt(r)
		if err != nil {
			return nil, err
		}
		fresh := c.noteNonce(r.URL, resp)
		if retry || key == nil || fresh == "" || fresh == sent || !b.replayable() || !asksForNonce(resp) {
			return resp, nil
		}
		discard(resp)
	}
}

// nonce is the latest DPoP-Nonce u's origin gave, or "".
func (c *Client) nonce(u *url.URL) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonces[origin(u)]
}

// noteNonce remembers the DPoP-Nonce of resp, an answer from u, and
// returns it. Only origins the Client sends tokens to are remembered, so
// the map stays as small as Options.TokenOrigins.
func (c *Client) noteNonce(u *url.URL, resp *http.Response) string {
	n := resp.Header.Get(dpop.NonceHeader)
	o := origin(u)
	if n == "" || len(n) > dpop.MaxNonceLength || !c.origins[o] {
		return ""
	}
	c.mu.Lock()
	c.nonces[o] = n
	c.mu.Unlock()
	return n
}

// asksForNonce reports whether resp refuses a proof for want of the
// server's nonce: a 401 whose WWW-Authenticate says use_dpop_nonce (a
// resource server, RFC 9449 §9), or a 400 or 401 whose body's code or
// error is use_dpop_nonce (sessiond's problem, an authorization server's
// error response, §8). The body stays readable.
func asksForNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(v, `error="use_dpop_nonce"`) {
			return true
		}
	}
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	var p struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	return json.Unmarshal(buf, &p) == nil && (p.Code == "use_dpop_nonce" || p.Error == "use_dpop_nonce")
}

// proofRefused reports whether a 401 refuses the DPoP proof rather than
// the token: invalid_dpop_proof, or use_dpop_nonce still after the retry
// with the nonce.
func proofRefused(resp *http.Response) bool {
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(v, `error="invalid_dpop_proof"`) || strings.Contains(v, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}

// discard reads a little of an answer not passed on, so that its
// connection can be reused, and closes it.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
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

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// currentToken returns an AT fit to send: the current one unless it expires
// within the refresh margin, equals stale (it was just refused), or force.
// Otherwise it refreshes, or waits for the refresh under way, so that any
// number of concurrent callers cause a single /v1/refresh.
func (c *Client) currentToken(ctx context.Context, stale string, force bool) (accessToken, error) {
	c.mu.Lock()
	if c.tok.RefreshToken == "" && c.tok.AccessToken == "" {
		c.mu.Unlock()
		return accessToken{}, ErrNoSession
	}
	call := c.refreshing
	if call == nil {
		// An AT other than stale is one someone else refreshed since this
		// caller sent stale: use it, unless it too is about to expire.
		at := c.tok.AccessToken
		if !force && at != "" && at != stale && c.opts.Now().Before(c.tok.AccessExpiresAt.Add(-c.margin())) {
			t := c.bearing(c.tok)
			c.mu.Unlock()
			return t, nil
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
		return accessToken{}, ctx.Err()
	}
}

// bearing is t's access token as it is to be sent.
func (c *Client) bearing(t Tokens) accessToken {
	return accessToken{token: t.AccessToken, dpop: c.opts.DPoP != nil && strings.EqualFold(t.TokenType, "DPoP")}
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
	case errors.As(err, &e) && e.Status == http.StatusUnauthorized && e.Code != "invalid_dpop_proof" && e.Code != "use_dpop_nonce":
		// The session is over; refreshing again cannot help. (A refused
		// proof leaves the session as it was.)
		c.tok = Tokens{}
	}
	c.mu.Unlock()
	if err == nil {
		c.notify(t) // before the waiters go on, and before another refresh can start
	}
	c.mu.Lock()
	call.at, call.err = c.bearing(t), err
	c.refreshing = nil
	c.mu.Unlock()
	close(call.done)
}
