// Package password hashes and verifies passwords with argon2id, encoded as
// PHC strings, and bounds how many hashes run at once so that a burst of
// logins queues briefly and then fails fast instead of exhausting memory.
//
// It also verifies bcrypt hashes imported from other systems ($2a$, $2b$,
// $2y$); NeedsRehash tells the caller to replace those, and argon2id hashes
// weaker than the configured parameters, after the next successful login.
//
// Start reading at Hasher; Params says what a hash costs.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Bounds on parameters, ours or read from a stored hash. A stored hash is
// data: absurd parameters in it must be an error, not a gigabyte allocation
// or a minute of CPU per login.
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxIterations = 100
	minSalt       = 8
	maxSalt       = 64
	minKey        = 16
	maxKey        = 128
)

// Params are the argon2id cost and output sizes.
type Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLength  uint32 // bytes
	KeyLength   uint32 // bytes
}

// DefaultParams is the OWASP Password Storage Cheat Sheet's minimum for
// argon2id: 19 MiB, 2 iterations, 1 lane, 16-byte salt, 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

// Validate reports whether p is usable: argon2 needs at least one iteration
// and lane and 8 KiB of memory per lane, and the bounds keep one hash from
// costing more than a server can give.
func (p Params) Validate() error {
	switch {
	case p.Parallelism < 1:
		return errors.New("parallelism must be at least 1")
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("iterations %d out of range 1..%d", p.Iterations, maxIterations)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory:
		return fmt.Errorf("memory %d KiB out of range %d..%d", p.Memory, 8*uint32(p.Parallelism), maxMemory)
	case p.SaltLength < minSalt || p.SaltLength > maxSalt:
		return fmt.Errorf("salt length %d out of range %d..%d", p.SaltLength, minSalt, maxSalt)
	case p.KeyLength < minKey || p.KeyLength > maxKey:
		return fmt.Errorf("key length %d out of range %d..%d", p.KeyLength, minKey, maxKey)
	}
	return nil
}

// Hasher hashes and verifies passwords at Params, running at most a fixed
// number of hashes at once. It is safe for concurrent use.
//
// Each slot owns the working memory of one hash (Params.Memory, 19 MiB by
// default) and reuses it from hash to hash, so hashing makes no garbage:
// x/crypto's argon2 allocates that memory afresh on every call, which cost
// a garbage collection per login (see internal/argon2). Memory held by slots
// is handed back once hashing has been quiet for a while (see idle).
//
// Checks of existing passwords (Verify, VerifyDummy: logins) come before
// new hashes (Hash: signups): a freed slot goes to the longest-waiting
// check, and to a new hash only when no check waits, so a burst of signups
// cannot turn logins into 503s.
type Hasher struct {
	params Params
	err    error // from params.Validate; returned by every hashing call
	// slots holds the free slots: a hash takes one, with its memory, and
	// puts it back. When none is free, callers queue in waiting, one queue
	// per priority, each served in arrival order.
	slots   chan *argon2.Memory
	mu      sync.Mutex // guards waiting, and orders handing a slot over with queueing for one
	waiting [2][]*waiter
	wait    time.Duration
	// dummy is a hash at params, for VerifyDummy to check against.
	dummy decoded
	// computed counts argon2 computations, for metrics and for tests that
	// show a refused login cost none.
	computed atomic.Uint64
	// held is the working memory the slots hold, in bytes.
	held atomic.Int64
	// lastUse is when a hash last ended (Unix nanoseconds); idleTimer is
	// armed while hashing is quiet and not yet released (see idle).
	lastUse   atomic.Int64
	idleMu    sync.Mutex
	idleTimer *time.Timer
}

// Computed returns how many argon2 hashes the Hasher has computed.
func (h *Hasher) Computed() uint64 { return h.computed.Load() }

// DefaultSlots is how many hashes run at once unless told otherwise: one
// per core. argon2id is bound by memory bandwidth, so more hashes than cores
// only share it: on 2 cores, 2 at once gave 75 hashes/s and 16 at once 63
// (docs/BENCHMARKS.md), each holding Params.Memory meanwhile.
func DefaultSlots() int { return runtime.GOMAXPROCS(0) }

// NewHasher returns a Hasher at p that runs at most slots hashes at once
// (slots <= 0 means DefaultSlots; each running hash holds p.Memory KiB). A caller waits at most wait for a slot and then gets a
// *sessiond.Error with CodeUnavailable and a RetryAfter of one second. If p is
// invalid (see Params.Validate), every hashing call returns that error.
func NewHasher(p Params, slots int, wait time.Duration) *Hasher {
	if slots <= 0 {
		slots = DefaultSlots()
	}
	h := &Hasher{params: p, err: p.Validate(), slots: make(chan *argon2.Memory, slots), wait: wait}
	for range slots {
		h.slots <- new(argon2.Memory) // empty until its first hash
	}
	if h.err == nil {
		h.dummy = decoded{params: p, salt: make([]byte, p.SaltLength), key: make([]byte, p.KeyLength)}
	}
	return h
}

// Hash returns the PHC encoding of an argon2id hash of password with a fresh
// random salt: $argon2id$v=19$m=…,t=…,p=…$salt$hash, both in unpadded
// standard base64.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if h.err != nil {
		return "", fmt.Errorf("hash password: invalid params: %w", h.err)
	}
	salt := make([]byte, h.params.SaltLength)
	rand.Read(salt) // never fails (crypto/rand, Go 1.24+)
	m, err := h.acquire(ctx, low)
	if err != nil {
		return "", err
	}
	key := h.compute(m, password, salt, h.params)
	h.release(m)
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches encoded, recomputing with the
// parameters stored in encoded (so that the defaults can be raised without
// locking anyone out; see NeedsRehash). The comparison is constant-time. A
// malformed encoding, or one with absurd parameters, is an error.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	if isBcrypt(encoded) {
		return h.verifyBcrypt(ctx, password, encoded)
	}
	d, err := decode(encoded)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	return h.verify(ctx, password, d)
}

// VerifyDummy does the work of a Verify at the Hasher's parameters and
// returns only a busy or cancellation error. Login calls it for an unknown
// email so that the answer takes as long as for a wrong password.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	if h.err != nil {
		return fmt.Errorf("verify dummy: invalid params: %w", h.err)
	}
	_, err := h.verify(ctx, password, h.dummy)
	return err
}

func (h *Hasher) verify(ctx context.Context, password string, d decoded) (bool, error) {
	m, err := h.acquire(ctx, high)
	if err != nil {
		return false, err
	}
	key := h.compute(m, password, d.salt, d.params)
	h.release(m)
	return subtle.ConstantTimeCompare(key, d.key) == 1, nil
}

// NeedsRehash reports whether encoded is weaker than what the Hasher
// makes — bcrypt, or argon2id with less memory, fewer iterations or a
// shorter salt or key — or cannot be read, so that the caller should store
// a fresh hash after the next successful login. A hash stronger than the
// configuration is kept: lowering the parameters weakens no one.
func (h *Hasher) NeedsRehash(encoded string) bool {
	d, err := decode(encoded)
	if err != nil {
		return true
	}
	p, q := d.params, h.params
	return p.Memory < q.Memory || p.Iterations < q.Iterations || p.SaltLength < q.SaltLength || p.KeyLength < q.KeyLength
}

// MaxBcryptCost bounds the cost of an imported bcrypt hash: each step
// doubles the work of a login, and cost 14 already takes about a second.
const MaxBcryptCost = 14

// CheckImported reports whether encoded is a hash Verify can check: an
// argon2id PHC string within the bounds above, or bcrypt ($2a$, $2b$,
// $2y$) of cost at most MaxBcryptCost. The error says what is wrong.
func CheckImported(encoded string) error {
	if isBcrypt(encoded) {
		cost, err := bcrypt.Cost([]byte(encoded))
		if err != nil || len(encoded) != 60 {
			return errors.New("malformed bcrypt hash")
		}
		if cost > MaxBcryptCost {
			return fmt.Errorf("bcrypt cost %d above %d", cost, MaxBcryptCost)
		}
		return nil
	}
	if _, err := decode(encoded); err != nil {
		return fmt.Errorf("%w (argon2id or bcrypt expected)", err)
	}
	return nil
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// verifyBcrypt checks an imported bcrypt hash in a hashing slot, as CPU
// bound as argon2 and under the same bound on concurrency.
func (h *Hasher) verifyBcrypt(ctx context.Context, password, encoded string) (bool, error) {
	if err := CheckImported(encoded); err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	m, err := h.acquire(ctx, high)
	if err != nil {
		return false, err
	}
	defer h.release(m)
	h.computed.Add(1)
	// bcrypt reads at most 72 bytes; a longer password that matches on its
	// first 72 would pass, which is bcrypt's rule and the importing
	// system's, until the rehash at this login replaces it.
	err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	case errors.Is(err, bcrypt.ErrPasswordTooLong):
		return false, nil
	default:
		return false, fmt.Errorf("verify password: %w", err)
	}
}

func (h *Hasher) compute(m *argon2.Memory, password string, salt []byte, p Params) []byte {
	h.computed.Add(1)
	before := m.Size()
	key := m.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	h.held.Add(int64(m.Size() - before))
	return key
}

// Priorities of the waiting queues.
const (
	high = 0 // checks of existing passwords: logins
	low  = 1 // new hashes: signups
)

// waiter is a caller queued for a slot; release hands it one through m.
type waiter struct{ m chan *argon2.Memory }

// acquire takes a hashing slot, waiting at most h.wait behind the callers
// of its priority and higher, and returns its memory, which the caller gives
// back with release.
func (h *Hasher) acquire(ctx context.Context, prio int) (*argon2.Memory, error) {
	if err := ctx.Err(); err != nil {
		return nil, canceled(err)
	}
	h.mu.Lock()
	select {
	case m := <-h.slots:
		h.mu.Unlock()
		return m, nil
	default:
	}
	w := &waiter{m: make(chan *argon2.Memory, 1)}
	h.waiting[prio] = append(h.waiting[prio], w)
	h.mu.Unlock()

	t := time.NewTimer(h.wait)
	defer t.Stop()
	var err error
	select {
	case m := <-w.m:
		return m, nil
	case <-t.C:
		err = &sessiond.Error{
			Code:       sessiond.CodeUnavailable,
			Message:    "too many password checks at once, try again shortly",
			RetryAfter: time.Second,
			Err:        errors.New("password hashing slots busy"),
		}
	case <-ctx.Done():
		err = canceled(ctx.Err())
	}
	h.mu.Lock()
	if i := slices.Index(h.waiting[prio], w); i >= 0 {
		h.waiting[prio] = slices.Delete(h.waiting[prio], i, i+1)
		h.mu.Unlock()
		return nil, err
	}
	h.mu.Unlock()
	// A slot was handed over as the wait ended: pass it on.
	h.release(<-w.m)
	return nil, err
}

func (h *Hasher) release(m *argon2.Memory) {
	h.lastUse.Store(time.Now().UnixNano())
	if h.put(m) {
		h.armIdle()
	}
}

// put hands a slot to the first waiter of the highest priority, or frees
// it, and reports whether every slot is now free.
func (h *Hasher) put(m *argon2.Memory) (allFree bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for prio := range h.waiting {
		if q := h.waiting[prio]; len(q) > 0 {
			w := q[0]
			h.waiting[prio] = slices.Delete(q, 0, 1)
			w.m <- m // buffered: never blocks
			return false
		}
	}
	h.slots <- m
	return len(h.slots) == cap(h.slots)
}

// IdleAfter is how long hashing must have been quiet before the slots hand
// their memory back. Under steady logins the slots keep it and hashing
// allocates nothing; after a burst, a refresh-heavy service returns to a
// small footprint (docs/BENCHMARKS.md, target 4). At worst, logins spaced
// just over IdleAfter apart allocate Params.Memory each, as x/crypto would.
const IdleAfter = time.Second

// armIdle schedules idle unless it is already scheduled.
func (h *Hasher) armIdle() {
	h.idleMu.Lock()
	defer h.idleMu.Unlock()
	if h.idleTimer == nil {
		h.idleTimer = time.AfterFunc(IdleAfter, h.idle)
	}
}

// idle runs IdleAfter after hashing last went quiet, and hands the slots'
// memory back to the operating system if it could drop it.
func (h *Hasher) idle() {
	if h.dropIdleMemory() > 0 {
		debug.FreeOSMemory() // holds no slot and no lock: hashing goes on meanwhile
	}
}

// dropIdleMemory drops the slots' memory and returns how many bytes, if no
// hash has run for IdleAfter. If one has, it schedules idle for later; if
// one is running, the release that ends it arms idle again. It takes every
// slot for the moment it needs, so no hash can be using what it drops.
func (h *Hasher) dropIdleMemory() int {
	h.idleMu.Lock()
	defer h.idleMu.Unlock()
	h.idleTimer = nil
	if quiet := time.Since(time.Unix(0, h.lastUse.Load())); quiet < IdleAfter {
		h.idleTimer = time.AfterFunc(IdleAfter-quiet, h.idle)
		return 0
	}
	var free []*argon2.Memory
	defer func() {
		for _, m := range free {
			h.put(m) // to whoever queued meanwhile
		}
	}()
	for range cap(h.slots) {
		select {
		case m := <-h.slots:
			free = append(free, m)
		default:
			return 0 // a hash is running
		}
	}
	released := 0
	for _, m := range free {
		released += m.Size()
		m.Release()
	}
	h.held.Add(-int64(released))
	return released
}

// MemoryHeld returns the bytes of working memory the slots hold.
func (h *Hasher) MemoryHeld() int64 { return h.held.Load() }

// canceled reports a caller that gave up while waiting; it is not a server
// fault, so it is not an internal error either.
func canceled(err error) *sessiond.Error {
	return &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "request canceled", Err: fmt.Errorf("wait for hashing slot: %w", err)}
}

// decoded is a parsed PHC string.
type decoded struct {
	params    Params
	salt, key []byte
}

const phcPrefix = "$argon2id$v=19$"

var b64 = base64.RawStdEncoding.Strict()

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.Memory, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses $argon2id$v=19$m=M,t=T,p=P$salt$key, the form Hash writes
// and the reference implementation and libsodium write too.
func decode(s string) (decoded, error) {
	var d decoded
	rest, ok := strings.CutPrefix(s, phcPrefix)
	if !ok {
		return d, errors.New("not an argon2id v=19 PHC string")
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return d, errors.New("malformed PHC string")
	}
	fields := strings.Split(parts[0], ",")
	if len(fields) != 3 {
		return d, fmt.Errorf("malformed parameters %q", parts[0])
	}
	var mtp [3]uint32
	for i, name := range [3]string{"m", "t", "p"} {
		value, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return d, fmt.Errorf("malformed parameter %q", fields[i])
		}
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			return d, fmt.Errorf("malformed parameter %q", fields[i])
		}
		mtp[i] = uint32(n)
	}
	var err error
	if d.salt, err = b64.DecodeString(parts[1]); err != nil {
		return d, fmt.Errorf("malformed salt: %w", err)
	}
	if d.key, err = b64.DecodeString(parts[2]); err != nil {
		return d, fmt.Errorf("malformed hash: %w", err)
	}
	if mtp[2] > 255 {
		return d, fmt.Errorf("parallelism %d out of range", mtp[2])
	}
	d.params = Params{Memory: mtp[0], Iterations: mtp[1], Parallelism: uint8(mtp[2]),
		SaltLength: uint32(len(d.salt)), KeyLength: uint32(len(d.key))}
	if err := d.params.Validate(); err != nil {
		return d, fmt.Errorf("stored params: %w", err)
	}
	return d, nil
}
