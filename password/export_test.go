package password

// Occupy takes one hashing slot until release is called, so that tests can
// make the Hasher busy deterministically.
func (h *Hasher) Occupy() (release func()) {
	h.slots <- struct{}{}
	return h.release
}
