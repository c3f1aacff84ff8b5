package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessiond/sessiond"
)

// clientIP is the connection's peer, unless that peer is a trusted proxy:
// then X-Forwarded-For is read from the right, skipping trusted proxies, and
// the first address not trusted is the client. Reading from the left would
// let any client name its own IP.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return host
	}
	addr := peer.Addr().Unmap()
	if !isTrusted(addr, trusted) {
		return addr.String()
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr.String() // a malformed chain: trust only what we saw
			}
			hop = hop.Unmap()
			if !isTrusted(hop, trusted) {
				return hop.String()
			}
			addr = hop
		}
	}
	return addr.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads a comma-separated list of CIDRs (or single
// addresses) as SESSIOND_TRUSTED_PROXIES takes it.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func clientInfo(r *http.Request, trusted []netip.Prefix) sessiond.ClientInfo {
	return sessiond.ClientInfo{UserAgent: r.UserAgent(), IP: clientIP(r, trusted)}
}
