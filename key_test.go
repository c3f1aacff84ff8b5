package sessiond_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

const testAccessTTL = 15 * time.Minute

// schedKey is a key created at created that signs from activates and
// retires at retired (zero: never).
func schedKey(id string, created, activates, retired time.Duration, erased bool) sessiond.SigningKey {
	k := sessiond.SigningKey{ID: id, Algorithm: "EdDSA", PrivateKey: []byte("seed"), PublicKey: []byte("pub"),
		CreatedAt: t0.Add(created), ActivatesAt: t0.Add(activates)}
	if retired != 0 {
		k.RetiredAt = t0.Add(retired)
	}
	if erased {
		k.PrivateKey = nil
	}
	return k
}

func publishedIDs(keys []sessiond.SigningKey) []string {
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestKeyScheduleSignerAndPublished: a rotated-in key is published from its
// creation and signs only from its activation; the key it supersedes signs
// until then and stays published for the access TTL plus the margin after.
func TestKeyScheduleSignerAndPublished(t *testing.T) {
	margin := sessiond.RetiredKeyMargin
	delay := sessiond.KeyActivationDelay
	// k1 since t0; k2 rotated in at +1h, signing from +1h+delay.
	rotated := []sessiond.SigningKey{
		schedKey("k2", time.Hour, time.Hour+delay, 0, false),
		schedKey("k1", 0, 0, time.Hour+delay, false),
	}
	// As rotated, then an emergency rotation at +1h+1m that signs at once:
	// k3 overtakes the still-pending k2, which never signs.
	emergency := []sessiond.SigningKey{
		schedKey("k3", time.Hour+time.Minute, time.Hour+time.Minute, 0, false),
		schedKey("k2", time.Hour, time.Hour+delay, time.Hour+time.Minute, false),
		schedKey("k1", 0, 0, time.Hour+time.Minute, false),
	}
	for _, tc := range []struct {
		name       string
		keys       []sessiond.SigningKey
		at         time.Duration
		wantSigner string
		wantPub    []string
	}{
		{"one key", rotated[1:2:2], 0, "k1", []string{"k1"}},
		{"before the rotation", rotated, time.Hour - time.Second, "k1", []string{"k1", "k2"}},
		{"new key published, not signing", rotated, time.Hour, "k1", []string{"k1", "k2"}},
		{"just before activation", rotated, time.Hour + delay - time.Microsecond, "k1", []string{"k1", "k2"}},
		{"at activation", rotated, time.Hour + delay, "k2", []string{"k1", "k2"}},
		{"old key still published for its tokens", rotated, time.Hour + delay + testAccessTTL + margin - time.Microsecond, "k2", []string{"k1", "k2"}},
		{"old key dropped once its tokens expired", rotated, time.Hour + delay + testAccessTTL + margin, "k2", []string{"k2"}},
		{"emergency key signs at once", emergency, time.Hour + time.Minute, "k3", []string{"k1", "k2", "k3"}},
		{"overtaken pending key never signs", emergency, time.Hour + delay, "k3", []string{"k1", "k2", "k3"}},
		{"overtaken keys leave together", emergency, time.Hour + time.Minute + testAccessTTL + margin, "k3", []string{"k3"}},
		{"clock behind the activation of the only key", rotated[:1], time.Hour, "k2", []string{"k2"}},
		{"erased key never signs", []sessiond.SigningKey{schedKey("k1", 0, 0, 0, true), schedKey("k0", 0, 0, 0, false)}, time.Hour, "k0", []string{"k0", "k1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sessiond.KeySchedule{AccessTTL: testAccessTTL}
			now := t0.Add(tc.at)
			got := s.Signer(tc.keys, now)
			if got == nil || got.ID != tc.wantSigner {
				t.Errorf("signer: got %v, want %s", got, tc.wantSigner)
			}
			if got := publishedIDs(s.Published(tc.keys, now)); !slices.Equal(got, tc.wantPub) {
				t.Errorf("published: got %v, want %v", got, tc.wantPub)
			}
			// The signer is always published: no token is ever signed by
			// a key the JWKS lacks.
			if got != nil && !s.PublishedAt(got, now) {
				t.Errorf("signer %s is not published", got.ID)
			}
		})
	}
}

// TestKeyScheduleNoSignerWithoutPrivateKeys: only erased or retired keys
// leave nothing to sign with.
func TestKeyScheduleNoSignerWithoutPrivateKeys(t *testing.T) {
	s := sessiond.KeySchedule{AccessTTL: testAccessTTL}
	keys := []sessiond.SigningKey{schedKey("k1", 0, 0, 0, true), schedKey("k0", 0, 0, time.Minute, false)}
	if got := s.Signer(keys, t0.Add(time.Hour)); got != nil {
		t.Errorf("signer: got %s, want none", got.ID)
	}
}

// TestKeyScheduleErasable: a key's private part may go once it is no
// longer published, and not before; the current key never.
func TestKeyScheduleErasable(t *testing.T) {
	s := sessiond.KeySchedule{AccessTTL: testAccessTTL}
	gone := time.Hour + testAccessTTL + sessiond.RetiredKeyMargin
	for _, tc := range []struct {
		name string
		key  sessiond.SigningKey
		at   time.Duration
		want bool
	}{
		{"current key", schedKey("k", 0, 0, 0, false), 1000 * time.Hour, false},
		{"retired, tokens alive", schedKey("k", 0, 0, time.Hour, false), gone - time.Microsecond, false},
		{"retired, tokens expired", schedKey("k", 0, 0, time.Hour, false), gone, true},
		{"already erased", schedKey("k", 0, 0, time.Hour, true), gone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.ErasableAt(&tc.key, t0.Add(tc.at)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestKeyActivationDelayCoversReloadAndJWKSCache: the default delay is at
// least the longest key reload (1m) plus client.Verifier's JWKS refresh (5m).
func TestKeyActivationDelayCoversReloadAndJWKSCache(t *testing.T) {
	if min := time.Minute + 5*time.Minute; sessiond.KeyActivationDelay < min {
		t.Errorf("KeyActivationDelay %v, want at least %v", sessiond.KeyActivationDelay, min)
	}
}
