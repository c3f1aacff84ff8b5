package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessiond/sessiond/dpop"
)

// Error is a problem answered by sessiond (RFC 9457), with its stable Code
// ("invalid_credentials", "refresh_token_reused", …: docs/API.md "Errors").
type Error struct {
	Status     int
	Code       string
	Title      string
	Detail     string
	RetryAfter time.Duration // from Retry-After, when sent
}

func (e *Error) Error() string {
	return fmt.Sprintf("sessiond: %d %s: %s", e.Status, e.Code, e.Detail)
}

// ErrNoSession is returned by calls that need a login when the Client has
// none: before Login, after Logout, or after sessiond refused the RT.
var ErrNoSession = errors.New("sessiond: not logged in")

// Tokens is a token response, with the access token's expiry worked out.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	// TokenType is the token response's token_type: "DPoP" for a session
	// bound to Options.DPoP, "Bearer" otherwise.
	TokenType        string
	SessionID        string
	ExpiresIn        time.Duration // of the AT, as sessiond said
	RefreshExpiresIn time.Duration
	// AccessExpiresAt is the AT's exp claim (read without verifying: the
	// client only needs to know when to refresh), or receipt + ExpiresIn.
	AccessExpiresAt time.Time
}

// Session is one of the user's live sessions.
type Session struct {
	SessionID  string    `json:"session_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

// Options tune a Client; the zero value is a good default.
type Options struct {
	// HTTPClient carries the calls to sessiond and, through HTTPClient's
	// transport, the calls to other services; default http.DefaultClient.
	HTTPClient *http.Client
	// OnTokens is called after every login and refresh with the new tokens,
	// before any request waiting for them goes on: persist the RT there.
	// With rotation on, the RT changes on every refresh.
	OnTokens func(Tokens)
	// TokenOrigins are the origins, besides baseURL's, that HTTPClient sends
	// the access token to: the services the program calls for its user,
	// each as a URL of which only the scheme, host and port count
	// ("https://api.example.com"). A request to any other origin, such as
	// a redirect from one of these to elsewhere, goes out without it.
	TokenOrigins []string
	// RefreshBefore is how long before the AT expires it is refreshed;
	// default 30s, and never more than a quarter of the AT's lifetime.
	RefreshBefore time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// DPoP, when set, is the key the login is bound to (RFC 9449): Login,
	// Refresh and Logout send a proof by it, so that sessiond binds the
	// session to the key (token type "DPoP") and refreshes it only for
	// whoever holds the key; with a bound access token HTTPClient sends
	// "Authorization: DPoP" and a proof by it with every request. A copied
	// refresh or access token is then worth nothing elsewhere. dpop.NewKey
	// makes a key for one run; a program that keeps its login across runs
	// (Resume) must keep the key too, since the saved refresh token works
	// only with it: save its private key (dpop.Key.Signer) where the
	// refresh token goes and rebuild it with dpop.KeyFrom. baseURL must
	// then be sessiond's public URL (SESSIOND_PUBLIC_URL) exactly, since
	// each proof names the URL it is for. Nil: Bearer tokens, no proofs.
	DPoP *dpop.Key
}

// Client talks to one sessiond for one login. Its methods are safe for
// concurrent use; its refreshes are single-flight.
type Client struct {
	base    string
	hc      *http.Client
	opts    Options
	origins map[string]bool // where the AT may go, as origin() spells them

	mu         sync.Mutex
	tok        Tokens
	refreshing *refreshCall      // the refresh under way, if any
	nonces     map[string]string // the latest DPoP-Nonce by origin, of the origins above
}

type refreshCall struct {
	done chan struct{}
	at   accessToken
	err  error
}

// New returns a Client of the sessiond at baseURL (e.g. "http://127.0.0.1:8080").
func New(baseURL string, opts *Options) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/")}
	if opts != nil {
		c.opts = *opts
	}
	c.hc = c.opts.HTTPClient
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.opts.RefreshBefore == 0 {
		c.opts.RefreshBefore = 30 * time.Second
	}
	if c.opts.Now == nil {
		c.opts.Now = time.Now
	}
	c.origins, c.nonces = map[string]bool{}, map[string]string{}
	for _, o := range append([]string{c.base}, c.opts.TokenOrigins...) {
		// One that does not parse names no origin, so the token goes to
		// none: a service that then answers 401 shows the mistake.
		if u, err := url.Parse(o); err == nil {
			if o := origin(u); o != "" {
				c.origins[o] = true
			}
		}
	}
	return c
}

// Signup creates a user and returns its id. A server that requires
// confirmed addresses (SESSIOND_REQUIRE_VERIFIED_EMAIL) answers a new and a
// taken address alike, without an id: userID is then empty and err nil.
func (c *Client) Signup(ctx context.Context, email, password string) (userID string, err error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	err = c.do(ctx, c.hc, false, "POST", "/v1/signup", map[string]string{"email": email, "password": password}, &out)
	return out.UserID, err
}

// Login starts a session; the Client keeps its tokens (and calls OnTokens).
// With Options.DPoP the session is bound to that key.
func (c *Client) Login(ctx context.Context, email, password string) (Tokens, error) {
	t, err := c.tokenCall(ctx, "/v1/login", map[string]string{"email": email, "password": password})
	if err != nil {
		return Tokens{}, err
	}
	c.mu.Lock()
	c.tok = t
	c.mu.Unlock()
	c.notify(t)
	return t, nil
}

// Resume makes the Client use a refresh token saved earlier (by OnTokens);
// the first request refreshes it.
func (c *Client) Resume(refreshToken string) {
	c.mu.Lock()
	c.tok = Tokens{RefreshToken: refreshToken}
	c.mu.Unlock()
}

// Tokens returns the current tokens.
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok
}

// Refresh trades the RT for new tokens now, sharing a refresh already
// under way. If sessiond refuses the RT (401), the Client forgets its
// tokens: the session is over, and the user must log in again.
func (c *Client) Refresh(ctx context.Context) (Tokens, error) {
	c.mu.Lock()
	at := c.tok.AccessToken
	c.mu.Unlock()
	if _, err := c.currentToken(ctx, at, true); err != nil {
		return Tokens{}, err
	}
	return c.Tokens(), nil
}

// Logout ends this session at sessiond (by its RT) and forgets the tokens.
func (c *Client) Logout(ctx context.Context) error {
	c.mu.Lock()
	rt := c.tok.RefreshToken
	c.tok = Tokens{}
	c.mu.Unlock()
	if rt == "" {
		return ErrNoSession
	}
	return c.do(ctx, c.hc, true, "POST", "/v1/logout", map[string]string{"refresh_token": rt}, nil)
}

// LogoutAll ends every session of the user.
func (c *Client) LogoutAll(ctx context.Context) error {
	err := c.do(ctx, c.HTTPClient(), false, "POST", "/v1/logout-all", nil, nil)
	if err == nil {
		c.mu.Lock()
		c.tok = Tokens{}
		c.mu.Unlock()
	}
	return err
}

// Sessions lists the user's live sessions, most recently used first.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var out struct {
		Sessions []Session `json:"sessions"`
	}
	err := c.do(ctx, c.HTTPClient(), false, "GET", "/v1/sessions", nil, &out)
	return out.Sessions, err
}

// RevokeSession ends one of the user's sessions.
func (c *Client) RevokeSession(ctx context.Context, sessionID string) error {
	return c.do(ctx, c.HTTPClient(), false, "DELETE", "/v1/sessions/"+pathEscape(sessionID), nil, nil)
}

func pathEscape(s string) string {
	return strings.NewReplacer("/", "%2F", "?", "%3F", "#", "%23", "%", "%25").Replace(s)
}

func (c *Client) notify(t Tokens) {
	if c.opts.OnTokens != nil {
		c.opts.OnTokens(t)
	}
}

// tokenCall posts body to a token endpoint and decodes the token response.
func (c *Client) tokenCall(ctx context.Context, path string, body any) (Tokens, error) {
	var out struct {
		AccessToken      string `json:"access_token"`
		TokenType        string `json:"token_type"`
		RefreshToken     string `json:"refresh_token"`
		ExpiresIn        int64  `json:"expires_in"`
		RefreshExpiresIn int64  `json:"refresh_expires_in"`
		SessionID        string `json:"session_id"`
	}
	received := c.opts.Now()
	if err := c.do(ctx, c.hc, true, "POST", path, body, &out); err != nil {
		return Tokens{}, err
	}
	t := Tokens{AccessToken: out.AccessToken, TokenType: out.TokenType, RefreshToken: out.RefreshToken, SessionID: out.SessionID,
		ExpiresIn: time.Duration(out.ExpiresIn) * time.Second, RefreshExpiresIn: time.Duration(out.RefreshExpiresIn) * time.Second}
	t.AccessExpiresAt = expiry(out.AccessToken, received.Add(t.ExpiresIn))
	return t, nil
}

// expiry reads the exp claim of a JWT without verifying it, or returns fallback.
func expiry(jwt string, fallback time.Time) time.Time {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fallback
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fallback
	}
	var p struct {
		Exp numeric `json:"exp"`
	}
	if json.Unmarshal(b, &p) != nil || p.Exp == 0 {
		return fallback
	}
	return p.Exp.time()
}

// maxResponse bounds what is read of a sessiond answer.
const maxResponse = 1 << 20

// do sends a JSON request through hc and decodes a JSON answer into out, or
// returns the problem as *Error. With prove (and Options.DPoP) the request
// carries a DPoP proof without an access token hash: for the calls that
// present a refresh token or credentials, not an access token (those go
// through HTTPClient, whose transport proves them).
func (c *Client) do(ctx context.Context, hc *http.Client, prove bool, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	var resp *http.Response
	if prove && c.opts.DPoP != nil {
		resp, err = c.send(hc.Do, req, &bodies{req: req}, accessToken{})
	} else {
		resp, err = hc.Do(req)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return readProblem(resp)
	}
	if out == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// readProblem turns an error response into *Error, coded even when the
// body is not a problem (a proxy's 502, say).
func readProblem(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Title: http.StatusText(resp.StatusCode)}
	var p struct {
		Title, Detail, Code string
	}
	if json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&p) == nil && p.Code != "" {
		e.Code, e.Title, e.Detail = p.Code, p.Title, p.Detail
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
