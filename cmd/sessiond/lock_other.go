//go:build !unix

package main

// lockDatabase is a no-op where flock(2) does not exist; see lock_unix.go.
func lockDatabase(path string) (release func(), err error) { return func() {}, nil }
