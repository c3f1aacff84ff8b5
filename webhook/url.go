package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/sessiond/sessiond"
)

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Address ranges no webhook may reach unless private addresses are
// allowed, beyond what netip's predicates name: carrier-grade NAT, "this
// network", IPv4-compatible IPv6 (deprecated, and a way to spell an IPv4
// address past the IPv4 checks), and the reserved block with the broadcast
// address.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// Blocked reports whether ip is an address a webhook must not reach:
// loopback, link-local, private (RFC 1918, fc00::/7), unspecified,
// multicast, carrier-grade NAT, 0.0.0.0/8, reserved, and the IPv4-mapped
// IPv6 forms of all of these.
func Blocked(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	ip = ip.WithZone("")
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ValidateURL checks an endpoint URL when an operator registers it: http or
// https, with a host, and, unless allowPrivate, a host that is not and does
// not resolve to a Blocked address (r nil means the system resolver). Its
// errors carry CodeInvalidRequest and a message fit for the operator.
//
// The check at registration is advice: DNS may answer differently at
// delivery time (DNS rebinding), so the Sender's dialer checks the address
// it actually connects to as well.
func ValidateURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	host, err := checkURL(raw, allowPrivate, true)
	if err != nil || allowPrivate {
		return err
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil // checkURL has judged the literal
	}
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL's host %q does not resolve", host)
	}
	for _, a := range addrs {
		if Blocked(a) {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL's host resolves to an internal address")
		}
	}
	return nil
}

// checkURL makes the checks that need no lookup and returns the host;
// byName adds the names that mean loopback by convention.
func checkURL(raw string, allowPrivate, byName bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL must be http or https")
	}
	host := u.Hostname()
	if host == "" {
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL has no host")
	}
	if allowPrivate {
		return host, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && Blocked(ip) {
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL's host is an internal address")
	}
	// Names that resolve to loopback by convention, whatever DNS says.
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); byName && (h == "localhost" || strings.HasSuffix(h, ".localhost")) {
		return "", sessiond.Errorf(sessiond.CodeInvalidRequest, "the webhook URL's host is an internal address")
	}
	return host, nil
}

// errBlockedAddress is the dialer's refusal of a Blocked address.
var errBlockedAddress = errors.New("address refused: internal address")

// dialControl refuses a connection to a Blocked address. It runs after
// name resolution, on the address about to be connected, so a name that
// resolved to a public address when the endpoint was registered and to an
// internal one now is still refused.
func dialControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return errBlockedAddress
	}
	if Blocked(ap.Addr()) {
		return errBlockedAddress
	}
	return nil
}
