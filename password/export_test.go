package password

// Occupy takes one hashing slot until release is called, so that tests can
// make the Hasher busy deterministically.
func (h *Hasher) Occupy() (release func()) {
	m := <-h.slots
	return func() { h.release(m) }
}

// Waiting returns how many checks (logins) and new hashes (signups) wait
// for a slot.
func (h *Hasher) Waiting() (checks, hashes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiting[high]), len(h.waiting[low])
}
