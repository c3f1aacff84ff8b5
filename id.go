package sessiond

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// NewID returns a random (version 4) UUID in its canonical text form. Users
// and sessions are named by these.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return FormatUUID(b)
}

// FormatUUID writes a UUID in its canonical lower-case text form, the form
// NewID returns.
func FormatUUID(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// NewEventID returns a version 7 UUID (RFC 9562): 48 bits of Unix
// milliseconds at t, then random bits. Events are named by these so that
// their ids sort by time, which keeps the events table's index appends
// local. Within one process the ids also increase strictly (RFC 9562 6.2,
// method 2: a later id of the same millisecond is the previous one plus
// one), so that the events of one transaction, which share their instant,
// list in the order they were recorded.
func NewEventID(t time.Time) string {
	var b [16]byte
	rand.Read(b[:])
	ms := uint64(t.UnixMilli())
	b[0], b[1], b[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	b[3], b[4], b[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	lastEventID.Lock()
	defer lastEventID.Unlock()
	if bytes.Equal(b[:6], lastEventID.b[:6]) && bytes.Compare(b[:], lastEventID.b[:]) <= 0 {
		b = lastEventID.b
		// The counter is the last 56 random bits, which a millisecond
		// cannot exhaust; version and variant stay as they are.
		for i := 15; i > 8; i-- {
			b[i]++
			if b[i] != 0 {
				break
			}
		}
	}
	lastEventID.b = b
	return FormatUUID(b)
}

var lastEventID struct {
	sync.Mutex
	b [16]byte
}
