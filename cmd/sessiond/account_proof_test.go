package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/mail"
	"github.com/sessiond/sessiond/mail/mailtest"
)

// mailConfig is the configuration of newMailEnv for an SMTP server at
// smtpURL ("" for none), changed by configure when it is set.
func mailConfig(t *testing.T, dbURL, smtpURL string, configure func(*app.Config)) app.Config {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.PublicURL = "https://sessiond.test"
	cfg.Issuer = "https://sessiond.test"
	cfg.PasswordHash = fastHash
	cfg.HashWait = time.Minute
	cfg.SMTPURL = smtpURL
	if configure != nil {
		configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// metric is the value of one series (name and labels exactly as the text
// format prints them) in a scrape; -1 if the scrape lacks it.
func metric(body, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// waitFor polls cond until it holds, failing t after a generous bound that
// only keeps a broken build from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outboxRow is a mail row of the outbox as the database holds it.
type outboxRow struct {
	Target, Status, LastStatus string
	Payload                    []byte
}

// mailRows reads every mail row of e's outbox straight from the database,
// past the store, to see what a dump would hold.
func (e *testEnv) mailRows() []outboxRow {
	e.t.Helper()
	const q = `SELECT target, status, last_status, payload FROM outbox WHERE channel = 'mail' ORDER BY created_at, id`
	var out []outboxRow
	if path, ok := strings.CutPrefix(e.cfg.DatabaseURL, "sqlite:"); ok {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			e.t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(q)
		if err != nil {
			e.t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var r outboxRow
			if err := rows.Scan(&r.Target, &r.Status, &r.LastStatus, &r.Payload); err != nil {
				e.t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			e.t.Fatal(err)
		}
		return out
	}
	conn, ctx := connect(e.t, e.cfg.DatabaseURL)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (outboxRow, error) {
		var r outboxRow
		err := row.Scan(&r.Target, &r.Status, &r.LastStatus, &r.Payload)
		return r, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// mailKind is the kind of mail a payload holds, "" if it holds none.
func mailKind(payload []byte) string {
	m, err := mail.Decode(payload)
	if err != nil {
		return ""
	}
	return string(m.Kind)
}

// TestMailMetrics: a mail the server accepts counts as sent; one it
// refuses counts as a failure to retry and stays pending; one whose link
// expires unsent counts as expired once the sweep fails it.
func TestMailMetrics(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		var down sync.Mutex
		refusing := false
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{Rcpt: func(string) error {
			down.Lock()
			defer down.Unlock()
			if refusing {
				return mailtest.Reply(451, "try again later")
			}
			return nil
		}}, nil)
		for _, series := range []string{`sessiond_mail_sent_total`, `sessiond_mail_failed_total{kind="retry"}`,
			`sessiond_mail_failed_total{kind="permanent"}`, `sessiond_mail_failed_total{kind="expired"}`} {
			if got := metric(e.metrics(), series); got != 0 {
				t.Errorf("%s at start: got %v, want 0", series, got)
			}
		}
		e.signup("ada@example.com")
		linkToken(t, srv, "ada@example.com", "/account/verify")
		waitFor(t, "sent counted", func() bool { return metric(e.metrics(), "sessiond_mail_sent_total") == 1 })

		down.Lock()
		refusing = true
		down.Unlock()
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		// The fake clock stands still but for a millisecond a reading, so
		// the refused mail's retry, seconds away, does not come.
		waitFor(t, "failure counted, mail pending", func() bool {
			body := e.metrics()
			return metric(body, `sessiond_mail_failed_total{kind="retry"}`) == 1 && metric(body, "sessiond_mail_pending") == 1
		})
		body := e.metrics()
		if got := metric(body, "sessiond_mail_sent_total"); got != 1 {
			t.Errorf("sent after the refusal: got %v, want 1", got)
		}
		if got := metric(body, `sessiond_outbox_deliveries_total{channel="mail",outcome="retry"}`); got != 1 {
			t.Errorf("mail retries in the outbox series: got %v, want 1", got)
		}

		e.clock.Advance(e.cfg.ResetTTL + time.Second)
		if _, err := e.app.SweepOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := metric(e.metrics(), `sessiond_mail_failed_total{kind="expired"}`); got != 1 {
			t.Errorf("expired after the sweep: got %v, want 1", got)
		}
		waitFor(t, "nothing pending after the sweep", func() bool { return metric(e.metrics(), "sessiond_mail_pending") == 0 })
	})
}

// TestUndeliveredMailExpires: without SMTP a reset mail waits; once its
// token has expired no worker sends it, even one that can send mail, and
// the sweep fails it and erases its payload (the token). The verification
// mail, whose token lives longer, still goes.
func TestUndeliveredMailExpires(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.deliver() // no mail sender
		e.signup("ada@example.com")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "ada@example.com"}, "").want(t, 202, "")
		e.clock.Advance(e.cfg.ResetTTL + time.Second)

		// Another instance, on the same database and clock, with SMTP.
		srv := mailtest.Start(t, mailtest.Options{})
		cfg := e.cfg
		cfg.SMTPURL = srv.URL("localhost")
		withSMTP := newTestEnvWith(t, cfg, nil, e.clock)
		withSMTP.deliver()
		verify := linkToken(t, srv, "ada@example.com", "/account/verify")
		waitFor(t, "the verification mail recorded as delivered", func() bool {
			st, err := e.app.Store.OutboxStats(context.Background())
			return err == nil && st.PendingMail == 1
		})
		// The expired reset mail is still pending: only the claim keeps
		// it from going. Give the worker a few rounds to show that it does.
		time.Sleep(3 * time.Second)
		if n := len(srv.Messages()); n != 1 {
			t.Fatalf("mails received: got %d, want only the verification mail", n)
		}

		if _, err := e.app.SweepOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows := e.mailRows()
		if len(rows) != 2 {
			t.Fatalf("mail rows: got %d, want 2", len(rows))
		}
		for _, r := range rows {
			if len(r.Payload) != 0 {
				t.Errorf("mail row (%s, %s): payload of %d bytes (%s) kept, want it erased", r.Status, r.LastStatus, len(r.Payload), mailKind(r.Payload))
			}
		}
		if r := rows[0]; r.Status != sessiond.OutboxDelivered {
			t.Errorf("verification mail: got status %s, want delivered", r.Status)
		}
		if r := rows[1]; r.Status != sessiond.OutboxFailed || r.LastStatus != sessiond.OutboxExpired {
			t.Errorf("reset mail: got status %s (%q), want failed (%q)", r.Status, r.LastStatus, sessiond.OutboxExpired)
		}
		if msgs, err := e.app.Store.PendingMail(context.Background(), 10); err != nil || len(msgs) != 0 {
			t.Errorf("pending mail after the sweep: got %d, %v; want none", len(msgs), err)
		}
		time.Sleep(500 * time.Millisecond)
		if n := len(srv.Messages()); n != 1 {
			t.Errorf("mails received after the sweep: got %d, want 1", n)
		}
		e.call("POST", "/v1/email/verify", map[string]string{"token": verify}, "").want(t, 204, "")
	})
}

// TestResetEndsSessionsRacingRefreshes: refreshes of several sessions of
// a user keep running while a password reset commits. Afterwards the user
// has no session at all, and every refresh token any of those sessions
// ever had (including those a refresh returned while the reset ran)
// fails. A reset deletes the sessions in its transaction, with the user
// locked; a refresh only ever updates a session row that is still as it
// read it, so a refresh that loses the race finds no row and fails, and
// one that wins had its result deleted by the reset.
func TestResetEndsSessionsRacingRefreshes(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, nil)
		for round := range 3 {
			email := fmt.Sprintf("ada%d@example.com", round)
			e.signup(email)
			e.call("POST", "/v1/password/forgot", map[string]string{"email": email}, "").want(t, 202, "")
			tok := linkToken(t, srv, email, "/account/reset")
			var sessions []tokens
			for range e.cfg.Policy.MaxSessions {
				sessions = append(sessions, e.login(email))
			}

			var (
				mu      sync.Mutex
				seen    []string // every RT handed out
				ok      int
				wg      sync.WaitGroup
				stop    = make(chan struct{})
				started = make(chan struct{}, len(sessions))
			)
			client := e.srv.Client()
			for _, s := range sessions {
				mu.Lock()
				seen = append(seen, s.RT)
				mu.Unlock()
				wg.Go(func() {
					rt := s.RT
					for i := 0; ; i++ {
						if i == 2 {
							started <- struct{}{}
						}
						body, _ := json.Marshal(map[string]string{"refresh_token": rt})
						resp, err := client.Post(e.srv.URL+"/v1/refresh", "application/json", bytes.NewReader(body))
						if err != nil {
							t.Errorf("refresh: %v", err)
							return
						}
						var r map[string]any
						json.NewDecoder(resp.Body).Decode(&r)
						resp.Body.Close()
						switch resp.StatusCode {
						case http.StatusOK:
							next, _ := r["refresh_token"].(string)
							mu.Lock()
							seen = append(seen, next)
							ok++
							mu.Unlock()
							rt = next
						case http.StatusUnauthorized:
							// The session is gone; keep asking until told
							// to stop, as a client retrying would.
						default:
							t.Errorf("refresh: got status %d (%v), want 200 or 401", resp.StatusCode, r)
							return
						}
						select {
						case <-stop:
							return
						default:
						}
					}
				})
			}
			for range sessions {
				<-started
			}
			e.call("POST", "/v1/password/reset", map[string]string{"token": tok, "new_password": newPassword}, "").want(t, 204, "")
			// Refreshes go on for a moment after the reset committed.
			time.Sleep(50 * time.Millisecond)
			close(stop)
			wg.Wait()
			if ok == 0 {
				t.Errorf("round %d: no refresh succeeded before the reset; the race was not run", round)
			}
			if live := e.liveSessions(email); len(live) != 0 {
				t.Errorf("round %d: %d sessions of the user survived the reset", round, len(live))
			}
			for _, rt := range seen {
				if r := e.refresh(rt); r.Status != 401 {
					t.Errorf("round %d: an RT from before the reset: got %d, want 401: %s", round, r.Status, r.Raw)
				}
			}
			loginWith(e, email, testPassword).want(t, 401, "invalid_credentials")
		}
	})
}

// TestMailDeliveredOnceByTwoInstances: two instances deliver from one
// outbox to one SMTP server; each mail arrives exactly once.
func TestMailDeliveredOnceByTwoInstances(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		srv := mailtest.Start(t, mailtest.Options{})
		e := newTestEnvWith(t, mailConfig(t, dbURL(t), srv.URL("localhost"), nil), nil, nil)
		peer := e.newPeerEnv()
		e.deliver()
		peer.deliver()

		const n = 60
		tokens := map[string]string{} // token → recipient
		for i := range n {
			to := fmt.Sprintf("user%d@example.com", i)
			tok := fmt.Sprintf("tok%02d%s", i, strings.Repeat("x", 38))
			tokens[tok] = to
			now := e.clock.Now()
			row, err := mail.NewOutboxMessage(mail.ResetPassword(to, tok, now.Add(time.Hour)), sessiond.NewID(), now)
			if err != nil {
				t.Fatal(err)
			}
			// One by one, while both workers already run.
			if err := e.app.Store.InsertOutbox(context.Background(), row); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "every mail delivered", func() bool {
			st, err := e.app.Store.OutboxStats(context.Background())
			return err == nil && st.Pending == 0
		})
		time.Sleep(time.Second) // room for a duplicate to arrive, if one were sent
		byID := map[string]int{}
		byToken := map[string]int{}
		for _, m := range srv.Messages() {
			p, err := mailtest.Parse(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			id := messageID(m.Data)
			if id == "" {
				t.Errorf("a mail without Message-ID")
			}
			byID[id]++
			tok := mailtest.Token(p.Text)
			byToken[tok]++
			if want := tokens[tok]; len(m.To) != 1 || m.To[0] != want {
				t.Errorf("mail with token %s went to %v, want %s", tok, m.To, want)
			}
		}
		if len(byID) != n || len(byToken) != n {
			t.Errorf("distinct mails received: got %d Message-IDs, %d tokens, want %d", len(byID), len(byToken), n)
		}
		for id, c := range byID {
			if c != 1 {
				t.Errorf("Message-ID %s received %d times, want once", id, c)
			}
		}
		for tok := range tokens {
			if byToken[tok] != 1 {
				t.Errorf("token %s received %d times, want once", tok, byToken[tok])
			}
		}
	})
}

// messageID is the Message-ID header of a raw mail.
func messageID(data []byte) string {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	for line := range strings.SplitSeq(string(head), "\r\n") {
		if v, ok := strings.CutPrefix(strings.ToLower(line), "message-id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// flakyPort is a TCP port on loopback that refuses connections while down
// and forwards them to an SMTP server while up: an SMTP host that is
// unreachable for a while.
type flakyPort struct {
	t      *testing.T
	addr   string // 127.0.0.1:port
	target string
	mu     sync.Mutex
	ln     net.Listener
}

func newFlakyPort(t *testing.T, target string) *flakyPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyPort{t: t, addr: ln.Addr().String(), target: target}
	ln.Close() // down: nothing listens, connections are refused
	t.Cleanup(f.down)
	return f
}

func (f *flakyPort) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
}

func (f *flakyPort) up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("listen again on %s: %v", f.addr, err)
	}
	f.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", f.target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, s)
			}()
		}
	}()
}

// TestForgotTimingAlike: forgot for an existing address (which writes a
// token, an event and a mail) and for an unknown one (which writes
// nothing) answer alike and take about as long: over interleaved
// requests, the medians are within 20 % of each other. Every address is
// asked once, and every request comes from its own client address, so no
// limit turns the existing path into the one that writes nothing.
func TestForgotTimingAlike(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		const n = 40
		srv := mailtest.Start(t, mailtest.Options{})
		e := newTestEnvWith(t, mailConfig(t, dbURL(t), srv.URL("localhost"), func(c *app.Config) {
			c.SignupRate = 10 * n
			c.TrustedProxies = "127.0.0.1/32,::1/128"
		}), nil, nil)
		e.deliver()
		for i := range n {
			e.signup(fmt.Sprintf("known%d@example.com", i))
		}
		waitFor(t, "signup mail sent", func() bool {
			st, err := e.app.Store.OutboxStats(context.Background())
			return err == nil && st.Pending == 0
		})
		client := e.srv.Client()
		forgot := func(email string, ip int) (time.Duration, int, []byte) {
			body, _ := json.Marshal(map[string]string{"email": email})
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/password/forgot", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", ip))
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return time.Since(start), resp.StatusCode, raw
		}
		// A few requests of each kind first, unmeasured, warm the
		// prepared statements and the pools.
		for i := range 3 {
			forgot(fmt.Sprintf("warm%d@example.com", i), 250+i)
		}
		var known, unknown []time.Duration
		var firstBody []byte
		for i := range n {
			// ABBA order, so that whatever a request leaves behind (the
			// mail it queued being sent) falls on both kinds alike.
			order := []bool{true, false}
			if i%2 == 1 {
				order = []bool{false, true}
			}
			for _, isKnown := range order {
				email, ip := fmt.Sprintf("unknown%d@example.com", i), 2*i+1
				if isKnown {
					email, ip = fmt.Sprintf("known%d@example.com", i), 2*i
				}
				d, status, raw := forgot(email, ip)
				if status != 202 {
					t.Fatalf("forgot %s: got %d %s, want 202", email, status, raw)
				}
				if firstBody == nil {
					firstBody = raw
				} else if !bytes.Equal(raw, firstBody) {
					t.Errorf("forgot %s: got body %q, want %q as for every other", email, raw, firstBody)
				}
				if isKnown {
					known = append(known, d)
				} else {
					unknown = append(unknown, d)
				}
			}
		}
		if got := e.countEvents(sessiond.EventPasswordResetRequested); got != n {
			t.Fatalf("password.reset_requested events: got %d, want %d: every known address must have been mailed", got, n)
		}
		mk, mu := median(known), median(unknown)
		ratio := float64(mk) / float64(mu)
		t.Logf("median forgot: known %v, unknown %v, ratio %.2f", mk, mu, ratio)
		if ratio < 1/1.2 || ratio > 1.2 {
			t.Errorf("median forgot time: known %v, unknown %v (ratio %.2f), want within 20%%", mk, mu, ratio)
		}
	})
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// TestNoSecretsInMailFlowLogs: signup, verification, resend, forgot and
// reset with the logger at DEBUG, SMTP delivery included: the logs hold
// none of the tokens, passwords or addresses.
func TestNoSecretsInMailFlowLogs(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		logs := &syncBuffer{}
		e, srv := newMailEnv(t, dbURL(t), mailtest.Options{}, logs)
		const email = "grace.hopper@example.com"
		e.signup(email)
		first := linkToken(t, srv, email, "/account/verify")
		s := e.login(email)
		e.call("POST", "/v1/email/verify/resend", nil, s.AT).want(t, 202, "")
		second := linkToken(t, srv, email, "/account/verify")
		e.call("POST", "/v1/email/verify", map[string]string{"token": first}, "").want(t, 400, "invalid_link")
		e.call("POST", "/v1/email/verify", map[string]string{"token": second}, "").want(t, 204, "")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": email}, "").want(t, 202, "")
		e.call("POST", "/v1/password/forgot", map[string]string{"email": "nobody.here@example.com"}, "").want(t, 202, "")
		reset := linkToken(t, srv, email, "/account/reset")
		e.call("POST", "/v1/password/reset", map[string]string{"token": reset, "new_password": newPassword}, "").want(t, 204, "")
		loginWith(e, email, newPassword).want(t, 200, "")
		waitFor(t, "outbox drained", func() bool {
			st, err := e.app.Store.OutboxStats(context.Background())
			return err == nil && st.Pending == 0
		})
		out := logs.String()
		if !strings.Contains(out, "/v1/password/reset") && !strings.Contains(out, "level=") {
			t.Fatalf("nothing was logged; the test proves nothing:\n%s", out)
		}
		for name, secret := range map[string]string{
			"first verification token": first, "second verification token": second, "reset token": reset,
			"password": testPassword, "new password": newPassword,
			"address": email, "address's local part": "grace.hopper", "unknown address": "nobody.here",
		} {
			if strings.Contains(out, secret) {
				t.Errorf("the %s is in the logs", name)
			}
		}
	})
}

// TestNoDefaultAccounts: a fresh database has no user and admits no admin
// call; the usual default names do not log in.
func TestNoDefaultAccounts(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		for _, key := range []string{"", "admin", "root", "sessiond"} {
			e.call("GET", "/admin/v1/users", nil, key).want(t, 401, "invalid_token")
		}
		for _, email := range []string{"admin@localhost", "root@localhost", "admin@sessiond.test"} {
			for _, pw := range []string{"admin", "password", "changeme", "administrator"} {
				loginWith(e, email, pw+strings.Repeat("!", 12-min(12, len(pw)))).want(t, 401, "invalid_credentials")
			}
		}
		key := e.adminKey("ops")
		if r := e.call("GET", "/admin/v1/users", nil, key).want(t, 200, ""); len(r.Body["users"].([]any)) != 0 {
			t.Errorf("users of a fresh database: got %s, want none", r.Raw)
		}
	})
}
