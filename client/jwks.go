package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// keySet caches the JWKS, after coreos/go-oidc's RemoteKeySet: lookups of
// known kids touch only an atomic pointer; an unknown kid triggers one
// refetch that concurrent callers share, at most once per minInterval.
type keySet struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	now         func() time.Time
	bg          context.Context // outlives any one caller, for shared fetches

	keys atomic.Pointer[map[string]ed25519.PublicKey]

	mu        sync.Mutex
	inflight  *fetch    // the fetch under way, if any
	lastFetch time.Time // when the last fetch started
	fetches   atomic.Int64
}

// fetch is one JWKS request that several callers may wait for.
type fetch struct {
	done chan struct{}
	err  error
}

func newKeySet(bg context.Context, url string, c *http.Client, minInterval time.Duration, now func() time.Time) *keySet {
	s := &keySet{url: url, client: c, minInterval: minInterval, now: now, bg: bg}
	s.keys.Store(&map[string]ed25519.PublicKey{})
	return s
}

// lookup returns the key named kid, refetching the JWKS once if it is
// unknown and the last fetch is older than minInterval.
func (s *keySet) lookup(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := (*s.keys.Load())[kid]; ok {
		return k, nil
	}
	if err := s.refetch(ctx, false); err != nil {
		if err == errTooSoon {
			return nil, refuse(ErrUnknownKey, fmt.Sprintf("kid %q", kid))
		}
		return nil, &VerifyError{Reason: ErrKeysUnavailable, Detail: fmt.Sprintf("kid %q", kid), Err: err}
	}
	if k, ok := (*s.keys.Load())[kid]; ok {
		return k, nil
	}
	return nil, refuse(ErrUnknownKey, fmt.Sprintf("kid %q", kid))
}

var errTooSoon = fmt.Errorf("refetched too recently")

// refetch fetches the JWKS, or joins the fetch under way. Unless force, it
// does nothing (errTooSoon) within minInterval of the last fetch.
func (s *keySet) refetch(ctx context.Context, force bool) error {
	s.mu.Lock()
	f := s.inflight
	if f == nil {
		if !force && s.now().Sub(s.lastFetch) < s.minInterval {
			s.mu.Unlock()
			return errTooSoon
		}
		f = &fetch{done: make(chan struct{})}
		s.inflight, s.lastFetch = f, s.now()
		go s.run(f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run performs f on the key set's own context, so that the caller that
// started it giving up does not fail the others waiting.
func (s *keySet) run(f *fetch) {
	ctx, cancel := context.WithTimeout(s.bg, 30*time.Second)
	defer cancel()
	keys, err := s.get(ctx)
	if err == nil {
		s.keys.Store(&keys)
	}
	s.mu.Lock()
	f.err = err
	s.inflight = nil
	s.mu.Unlock()
	close(f.done)
}

// refreshEvery refetches in the background, so that keys retired and added
// by a rotation are picked up before a token needs them. A failed refresh
// keeps the keys there are.
func (s *keySet) refreshEvery(bg, parent context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			return
		case <-parent.Done():
			return
		case <-t.C:
			s.refetch(bg, true)
		}
	}
}

// maxJWKS bounds the JWKS document read.
const maxJWKS = 1 << 20

func (s *keySet) get(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	s.fetches.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: %s answered %s", s.url, resp.Status)
	}
	var doc struct {
		Keys []struct {
			Kty, Crv, X, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKS)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(doc.Keys))
	for _, k := range doc.Keys {
		// Keys of other types or uses are skipped, not errors: a JWKS may
		// carry keys this verifier has no business with.
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Kid == "" ||
			(k.Alg != "" && k.Alg != "EdDSA") || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("decode jwks: %s holds no Ed25519 signing key", s.url)
	}
	return keys, nil
}
