// Package mailtest runs an SMTP server in-process for tests: it captures
// the mail it is given, optionally over STARTTLS or implicit TLS with a
// self-signed certificate, optionally behind AUTH PLAIN, and can refuse
// recipients with any reply. End-to-end and browser tests use it to read
// the link out of a mail.
//
// Start with Start, then Server.Next or Server.Messages, and Parse.
package mailtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLSMode is how a Server encrypts.
type TLSMode int

// The modes.
const (
	// Plain offers no TLS at all.
	Plain TLSMode = iota
	// StartTLS offers STARTTLS on a plain connection.
	StartTLS
	// ImplicitTLS speaks TLS from the first byte (smtps).
	ImplicitTLS
)

// Options shape a Server; the zero value is a plain server that accepts
// every mail without AUTH.
type Options struct {
	TLS TLSMode
	// Username and Password, when set, make AUTH PLAIN required before
	// MAIL FROM.
	Username, Password string
	// Hosts are extra names the certificate is valid for, besides
	// localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Mail, Rcpt and Data, if set, decide each MAIL FROM, RCPT TO and
	// received message: a non-nil answer (see Reply) refuses it.
	Mail func(from string) error
	Rcpt func(to string) error
	Data func(data []byte) error
}

// Reply is an SMTP answer for Options.Mail, Rcpt or Data:
// Reply(451, "try later").
func Reply(code int, message string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: message}
}

// Message is one mail the server accepted.
type Message struct {
	From string
	To   []string
	// Data is the message as received: headers and body.
	Data []byte
	// User is who authenticated, empty without AUTH.
	User string
	// TLS tells whether the connection was encrypted.
	TLS bool
}

// Server is a running SMTP server on a loopback port.
type Server struct {
	// Addr is host:port of the listener, on 127.0.0.1.
	Addr string
	// CertPool trusts the server's certificate; nil in Plain mode.
	CertPool *x509.CertPool

	opt      Options
	srv      *smtp.Server
	received chan Message

	mu       sync.Mutex
	messages []Message
	auths    int
}

// Start runs a server until the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	s := &Server{opt: opt, received: make(chan Message, 1000)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "mailtest.localhost"
	// A refused handshake, which tests provoke, is not worth a line.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.MaxRecipients = 10
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	switch opt.TLS {
	case Plain:
		s.srv.AllowInsecureAuth = true
	case StartTLS, ImplicitTLS:
		cert, pool, err := selfSigned(opt.Hosts)
		if err != nil {
			ln.Close()
			t.Fatalf("mailtest: certificate: %v", err)
		}
		s.CertPool = pool
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if opt.TLS == StartTLS {
			s.srv.TLSConfig = cfg
		} else {
			ln = tls.NewListener(ln, cfg)
		}
	}
	s.Addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		// Serve may not have registered ln with the server yet, in
		// which case Close missed it.
		ln.Close()
		<-done
	})
	return s
}

// Port is the listener's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// URL is a SESSIOND_SMTP_URL for this server under host (say "localhost",
// or a name the test's dialer maps to Addr), with the server's
// credentials.
func (s *Server) URL(host string) string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(host, strconv.Itoa(s.Port()))}
	if s.opt.TLS == ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opt.Username != "" {
		u.User = url.UserPassword(s.opt.Username, s.opt.Password)
	}
	return u.String()
}

// Dial connects to the server whatever address is asked for: a
// Config.DialContext that lets a test use any host name.
func (s *Server) Dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, s.Addr)
}

// Messages are the mails accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// AuthAttempts counts the AUTH commands the server was sent.
func (s *Server) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// Next waits up to timeout for the next mail accepted, in order of
// acceptance, and fails the test if none comes.
func (s *Server) Next(t testing.TB, timeout time.Duration) Message {
	t.Helper()
	select {
	case m := <-s.received:
		return m
	case <-time.After(timeout):
		t.Fatalf("mailtest: no mail within %v", timeout)
		return Message{}
	}
}

type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	from string
	to   []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opt.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	ss.s.mu.Lock()
	ss.s.auths++
	ss.s.mu.Unlock()
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username || username != ss.s.opt.Username || password != ss.s.opt.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opt.Username != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	if ss.s.opt.Mail != nil {
		if err := ss.s.opt.Mail(from); err != nil {
			return err
		}
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.opt.Rcpt != nil {
		if err := ss.s.opt.Rcpt(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if ss.s.opt.Data != nil {
		if err := ss.s.opt.Data(data); err != nil {
			return err
		}
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := Message{From: ss.from, To: ss.to, Data: data, User: ss.user, TLS: isTLS}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, m)
	ss.s.mu.Unlock()
	select {
	case ss.s.received <- m:
	default:
		return errors.New("mailtest: too many mails nobody read")
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for localhost, the loopback addresses
// and hosts, and a pool that trusts it.
func selfSigned(hosts []string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              append([]string{"localhost"}, hosts...),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
