package password

// Occupy takes one hashing slot until release is called, so that tests can
// make the Hasher busy deterministically.
func (h *Hasher) Occupy() (release func()) {
	m := <-h.slots
	return func() { h.release(m) }
}
