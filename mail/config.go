package mail

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
)

// Default ports of the two schemes: submission with STARTTLS, and
// submission over implicit TLS.
const (
	DefaultSMTPPort  = 587
	DefaultSMTPSPort = 465
)

// Config says how to reach the SMTP server that relays sessiond's mail.
type Config struct {
	Host string
	Port int
	// Username and Password, when set, are given with SMTP AUTH, which
	// happens only once the connection is encrypted or on loopback.
	Username, Password string
	// ImplicitTLS speaks TLS from the first byte (smtps). Otherwise the
	// connection is upgraded with STARTTLS, which is required unless the
	// host is loopback: a server that does not offer it gets nothing.
	ImplicitTLS bool
	// RootCAs verifies the server's certificate; nil means the system's
	// roots. A test trusts its own self-signed server with it.
	RootCAs *x509.CertPool
	// DialContext opens the TCP connection; nil means a net.Dialer. Tests
	// use it to reach an in-process server under a name that is not
	// loopback; a deployment could go through a proxy.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

const smtpURLHint = "want smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (implicit TLS)"

// ParseSMTPURL reads SESSIOND_SMTP_URL: smtp://user:pass@host[:587], which
// upgrades with STARTTLS (required unless host is loopback), or
// smtps://user:pass@host[:465], TLS from the start. User and password are
// URL-decoded, and optional together. Errors are one line, name the
// setting, and never repeat the URL, which holds a password.
func ParseSMTPURL(s string) (Config, error) {
	bad := func(what string) (Config, error) {
		return Config{}, fmt.Errorf("SESSIOND_SMTP_URL: %s; %s", what, smtpURLHint)
	}
	if !strings.Contains(s, "://") {
		// "host:587" would parse as a URL of scheme "host".
		return bad("no smtp:// or smtps:// in front")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url's errors quote the input, password included.
		return bad("not a URL")
	}
	var c Config
	switch u.Scheme {
	case "smtp":
		c.Port = DefaultSMTPPort
	case "smtps":
		c.Port, c.ImplicitTLS = DefaultSMTPSPort, true
	default:
		return bad(fmt.Sprintf("scheme %q is neither smtp nor smtps", u.Scheme))
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		// Nothing after the host is understood; better refuse than
		// ignore an option someone expects to work.
		return bad("nothing may follow host:port")
	}
	c.Host = u.Hostname()
	if c.Host == "" {
		return bad("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port out of range")
		}
		c.Port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		if c.Username == "" || c.Password == "" {
			return bad("user and password go together")
		}
	}
	return c, nil
}

// Loopback reports whether the server is on this machine, where mail may
// go in the clear: there is no network to protect it on, and local relays
// often have a certificate nothing would verify.
func (c Config) Loopback() bool {
	if c.Host == "localhost" {
		return true
	}
	ip := net.ParseIP(c.Host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the server's host:port.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String is the configuration as a URL with the password left out, for
// logs.
func (c Config) String() string {
	u := url.URL{Scheme: "smtp", Host: c.Addr()}
	if c.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	return u.String()
}

// DefaultFrom is the sender when SESSIOND_MAIL_FROM is not set:
// "sessiond <no-reply@HOST>", HOST being the public URL's host without
// its port.
func DefaultFrom(publicURL string) (string, error) {
	host, err := mailHost(publicURL)
	if err != nil {
		return "", err
	}
	return "sessiond <no-reply@" + host + ">", nil
}

// ParseFrom checks SESSIOND_MAIL_FROM, one address with an optional
// display name ("Example <no-reply@example.com>"), and returns it in the
// form a From header carries.
func ParseFrom(s string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf(`SESSIOND_MAIL_FROM: not one mail address; want "Name <user@example.com>" or user@example.com`)
	}
	if strings.ContainsAny(a.Name, "\r\n") {
		return nil, errors.New("SESSIOND_MAIL_FROM: the display name holds a line break")
	}
	return a, nil
}

// publicHost is the host of SESSIOND_PUBLIC_URL, without port or brackets.
func publicHost(publicURL string) (string, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
		return "", errors.New("SESSIOND_PUBLIC_URL: want an absolute http(s) URL such as https://auth.example.com")
	}
	return u.Hostname(), nil
}

// mailHost is the public host as the domain of an address or a
// Message-ID: an IP address (a test or a private installation) goes in
// brackets.
func mailHost(publicURL string) (string, error) {
	host, err := publicHost(publicURL)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) != nil {
		host = "[" + host + "]"
	}
	return host, nil
}
