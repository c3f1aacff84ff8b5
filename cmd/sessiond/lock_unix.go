//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDatabase takes an exclusive advisory lock on PATH.lock for as long as
// this serve runs, so that a second sessiond serving the same SQLite file
// refuses to start: two instances would each cache their own signing keys
// and rate-limit counts, and each would think it is the only writer. The
// operator commands (migrate, keys) take no lock and still work. The lock
// goes with the process, even on a crash; the file stays, harmless.
func lockDatabase(path string) (release func(), err error) {
	lockPath := path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another sessiond serves %s (it holds %s); one SQLite file takes one instance: run several on PostgreSQL (SESSIOND_DATABASE_URL=postgres://...)", path, lockPath)
		}
		return nil, fmt.Errorf("lock database %s: %w", lockPath, err)
	}
	return func() { f.Close() }, nil
}
