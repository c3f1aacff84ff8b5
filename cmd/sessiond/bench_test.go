package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/internal/loadgen"
)

// TestBenchCommand drives an in-process sessiond with every op for a moment:
// requests succeed, refresh tokens chain without a single reuse error.
func TestBenchCommand(t *testing.T) {
	// Every bench request comes from one IP; signups by the thousand are
	// the point here, not an abuse.
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.SignupRate = 1_000_000 })
	for _, op := range loadgen.Ops {
		t.Run(op, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"bench", "-url", e.srv.URL, "-op", op, "-c", "4", "-d", "300ms", "-json"}, getenvFrom(nil), &out, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var r loadgen.Result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("-json output %q: %v", out.String(), err)
			}
			if r.Requests == 0 || r.OK != r.Requests || len(r.Errors) != 0 {
				t.Fatalf("got %d requests, %d ok, errors %v; want all ok", r.Requests, r.OK, r.Errors)
			}
			if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
				t.Fatalf("percentiles out of order: %+v", r)
			}
		})
	}
	var human bytes.Buffer
	if err := run(context.Background(), []string{"bench", "-url", e.srv.URL, "-c", "2", "-d", "100ms"}, getenvFrom(nil), &human, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(human.Bytes(), []byte("req/s")) || !bytes.Contains(human.Bytes(), []byte("p99")) {
		t.Fatalf("summary lacks req/s or p99: %s", human.String())
	}
}
