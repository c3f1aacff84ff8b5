package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/outbox"
)

// Options tune a Sender.
type Options struct {
	Site Site
	// From is the sender of every mail (SESSIOND_MAIL_FROM); default
	// DefaultFrom(Site.PublicURL).
	From string
	// Clock dates the mails and tells expired tokens; default the system
	// clock.
	Clock sessiond.Clock
	// Timeout bounds a send whose context has no deadline; default 30s.
	// The outbox worker's context always has one.
	Timeout time.Duration
	// MaxConns bounds the connections open to the server at once, which
	// relays limit per client; default 4. The outbox worker may run more
	// sends than that, and the others wait their turn.
	MaxConns int
}

// Sender is the outbox.Sender of the mail channel: it renders each
// message's payload and hands it to the SMTP server of its Config, one
// connection per mail.
type Sender struct {
	cfg   Config
	opt   Options
	from  *netmail.Address
	host  string        // the public host, for Message-IDs
	conns chan struct{} // a slot per connection allowed
}

var _ outbox.Sender = (*Sender)(nil)

// NewSender checks cfg and opt and returns a Sender. It does not connect:
// a server that is down at start only delays the mail.
func NewSender(cfg Config, opt Options) (*Sender, error) {
	if cfg.Host == "" || cfg.Port < 1 || cfg.Port > 65535 {
		return nil, errors.New("SESSIOND_SMTP_URL: no host or port; " + smtpURLHint)
	}
	if err := opt.Site.Validate(); err != nil {
		return nil, err
	}
	if opt.From == "" {
		opt.From, _ = DefaultFrom(opt.Site.PublicURL) // the site is valid
	}
	from, err := ParseFrom(opt.From)
	if err != nil {
		return nil, err
	}
	if opt.Clock == nil {
		opt.Clock = sessiond.SystemClock
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	if opt.MaxConns <= 0 {
		opt.MaxConns = 4
	}
	host, _ := mailHost(opt.Site.PublicURL)
	return &Sender{cfg: cfg, opt: opt, from: from, host: host, conns: make(chan struct{}, opt.MaxConns)}, nil
}

// Send renders m and delivers it. Failures are classified for the outbox:
// a recipient or message the server refuses for good (5xx to RCPT or
// DATA) is Permanent; anything else, a 4xx, a refused or timed-out
// connection, a TLS or AUTH failure, is retried, since it is the server's
// state or the operator's configuration that has to change, not the mail.
// A mail whose token has expired is failed without connecting. The status
// names only the failure ("SMTP 550", "timeout"): never the token, the
// body or the server's text.
func (s *Sender) Send(ctx context.Context, m sessiond.OutboxMessage) error {
	msg, err := Decode(m.Payload)
	if err != nil {
		return outbox.Permanent("bad payload", err)
	}
	if msg.To != m.Target {
		return outbox.Permanent("bad payload", errors.New("payload recipient differs from the row's target"))
	}
	rcpt, err := netmail.ParseAddress(m.Target)
	if err != nil {
		return outbox.Permanent("bad payload", err) // Decode checked To, which is Target
	}
	now := s.opt.Clock()
	if msg.Expired(now) {
		return outbox.Permanent("token expired", nil)
	}
	r, err := s.opt.Site.Render(msg)
	if err != nil {
		return outbox.Permanent("render failed", err)
	}
	gm := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	gm.FromMailAddress(s.from)
	gm.ToMailAddress(rcpt)
	gm.Subject(r.Subject)
	// One Message-ID per outbox row: a mail sent twice (delivery is at
	// least once) carries the same id, which lets clients fold the copies.
	gm.SetMessageIDWithValue(m.ID + "@" + s.host)
	gm.SetDateWithValue(now)
	// RFC 3834: no vacation replies or other auto-responses to this.
	gm.SetGenHeader("Auto-Submitted", "auto-generated")
	gm.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	gm.SetBodyString(gomail.TypeTextPlain, r.Text)
	gm.AddAlternativeString(gomail.TypeTextHTML, r.HTML)

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opt.Timeout)
		defer cancel()
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-s.conns }()
	var stop func() bool
	client, err := s.client(ctx, &stop)
	if err != nil {
		// Options NewSender checked, or the local host name.
		return outbox.Retry("bad configuration", err)
	}
	err = client.DialAndSendWithContext(ctx, gm)
	if stop != nil {
		stop()
	}
	if gm.IsDelivered() {
		// Accepted by the server: a failure after that (a QUIT that
		// timed out) must not send the mail again.
		return nil
	}
	if err == nil {
		return outbox.Retry("not delivered", nil)
	}
	return classify(ctx, err)
}

// acquire takes a connection slot, waiting while ctx lasts.
func (s *Sender) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return classify(ctx, err)
	}
	select {
	case s.conns <- struct{}{}:
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.Canceled) {
			return outbox.Retry("canceled", ctx.Err())
		}
		return outbox.Retry("too many mails in flight", ctx.Err())
	}
}

// client is a go-mail client for one send under ctx. go-mail bounds each
// exchange by its timeout rather than by a context, so its timeout is the
// time ctx has left and the connection is also closed when ctx ends, which
// cuts any exchange short; *stop is set to undo that after the send.
func (s *Sender) client(ctx context.Context, stop *func() bool) (*gomail.Client, error) {
	deadline, _ := ctx.Deadline()
	timeout := max(time.Until(deadline), time.Millisecond)
	tlsConfig := &tls.Config{ServerName: s.cfg.Host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	dial := s.cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(func(dctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			if s.cfg.ImplicitTLS {
				tc := tls.Client(conn, tlsConfig)
				if err := tc.HandshakeContext(dctx); err != nil {
					conn.Close()
					return nil, err
				}
				conn = tc
			}
			// ctx, not dctx: dctx ends with the dial, ctx with the send.
			*stop = context.AfterFunc(ctx, func() { conn.Close() })
			return conn, nil
		}),
	}
	switch {
	case s.cfg.ImplicitTLS:
		// Already TLS: go-mail must not look for STARTTLS on top.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case s.cfg.Loopback():
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		// PLAIN and LOGIN are what submission servers offer. go-mail's
		// PLAIN sends nothing unless the connection is TLS or the host
		// is localhost; on another loopback address the NOENC variant
		// is needed, and loopback is where the clear is accepted.
		mechs := []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin}
		if s.cfg.Loopback() && !s.cfg.ImplicitTLS {
			mechs = []gomail.SMTPAuthType{gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc}
		}
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(mechs...),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	return gomail.NewClient(s.cfg.Host, opts...)
}

// classify turns a failed send into the outbox's terms.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// The connection was closed under the send: that, not what the
		// closing caused, is the failure.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return outbox.Retry("timeout", err)
		}
		return outbox.Retry("canceled", err)
	}
	var sendErr *gomail.SendError
	if errors.As(err, &sendErr) {
		if code := sendErr.ErrorCode(); code >= 400 && code <= 599 {
			status := fmt.Sprintf("SMTP %d", code)
			switch sendErr.Reason {
			case gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
				if code >= 500 {
					return outbox.Permanent(status, err)
				}
			}
			// 4xx, or a 5xx to MAIL FROM, which refuses the sender: the
			// configuration, not this mail.
			return outbox.Retry(status, err)
		}
	}
	var tpErr *textproto.Error
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return outbox.Retry("TLS certificate refused", err)
	case errors.As(err, &tpErr):
		// A reply during the greeting, EHLO, STARTTLS or AUTH.
		status := fmt.Sprintf("SMTP %d", tpErr.Code)
		if strings.Contains(err.Error(), "SMTP AUTH failed") {
			status = fmt.Sprintf("SMTP AUTH failed (%d)", tpErr.Code)
		}
		return outbox.Retry(status, err)
	case strings.Contains(err.Error(), "does not support STARTTLS"):
		// go-mail has no sentinel for it; the test pins the text.
		return outbox.Retry("STARTTLS not offered", err)
	case errors.Is(err, gomail.ErrNoSupportedAuthDiscovered), strings.Contains(err.Error(), "does not support SMTP AUTH"):
		return outbox.Retry("SMTP AUTH not offered", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return outbox.Retry("connection refused", err)
	case errors.As(err, &dnsErr):
		return outbox.Retry("DNS lookup failed", err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return outbox.Retry("timeout", err)
	case isTLSError(err):
		return outbox.Retry("TLS failed", err)
	}
	return outbox.Retry("connection failed", err)
}

func isTLSError(err error) bool {
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	return errors.As(err, &recErr) || errors.As(err, &alert)
}
