// Package storetest is the behavioural contract of sessiond.Store: one suite,
// written against the interface, that every store (sqlite, postgres) runs
// against a fresh database of its own.
//
// Start reading at Run; each subtest names the rule it proves. The suite never
// sleeps: every expiry decision is driven by the now values it passes in.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// Run runs the store contract against fresh stores made by open. Each call of
// open must return a NEW, migrated, empty database, cleaned up by t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) sessiond.Store) {
	t.Run("users", func(t *testing.T) { testUsers(t, open) })
}

// t0 is the suite's fixed epoch: every now is t0 plus some offset, so runs
// are reproducible and nothing depends on the wall clock.
var t0 = sessiond.Now(time.Date(2030, 1, 2, 3, 4, 5, 678912000, time.UTC))

func ctx(t *testing.T) context.Context { return t.Context() }
