package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// lockedBuffer is a bytes.Buffer that a running server may write while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDatabasePasswordIsNotShown starts sessiond with a PostgreSQL URL
// carrying a password in every place libpq takes one (userinfo, password,
// sslpassword), as a flag: neither the start log nor the admin listener's
// /debug/pprof/cmdline shows any of them.
func TestDatabasePasswordIsNotShown(t *testing.T) {
	base := pgtest.URL(t) // the server trusts local connections, so the passwords are not checked
	secrets := []string{"userinfo-S3CRET", "query-S3CRET", "ssl-S3CRET"}
	dbURL := strings.Replace(base, "://postgres@", "://postgres:"+secrets[0]+"@", 1) +
		"&password=" + secrets[1] + "&sslpassword=" + secrets[2]
	if !strings.Contains(dbURL, secrets[0]) {
		t.Fatalf("could not put a userinfo password into %q", base)
	}
	args := []string{"serve", "-database-url", dbURL}
	saved := os.Args
	os.Args = append([]string{"sessiond"}, args...) // what pprof's cmdline would show
	defer func() { os.Args = saved }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"SESSIOND_ADDR": "127.0.0.1:0", "SESSIOND_ADMIN_ADDR": "127.0.0.1:0", "SESSIOND_PUBLIC_URL": "https://sessiond.test"}
	var stderr lockedBuffer
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, getenvFrom(env), stdoutW, &stderr); stdoutW.Close() }()
	lines := bufio.NewReader(stdoutR)
	adminLine, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("no admin line: %v (stderr %s)", err, stderr.String())
	}
	admin := strings.TrimSpace(adminLine[strings.LastIndex(adminLine, " ")+1:])
	if _, err := lines.ReadString('\n'); err != nil { // listening: the start log is written
		t.Fatalf("no listening line: %v", err)
	}
	go io.Copy(io.Discard, stdoutR)

	resp, err := http.Get(admin + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}

	shown := map[string]string{"the start log": stderr.String(), "/debug/pprof/cmdline": string(cmdline)}
	// The checks read real content: the log names the database's host, and
	// the command line its flag.
	if !strings.Contains(shown["the start log"], "127.0.0.1:5432") || !strings.Contains(shown["/debug/pprof/cmdline"], "-database-url") {
		t.Fatalf("nothing to inspect: log %q, cmdline %q", shown["the start log"], shown["/debug/pprof/cmdline"])
	}
	for where, text := range shown {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the password %q: %s", where, s, text)
			}
		}
	}
}
