package ingest

import (
	"bytes"
	"net/netip"
)

// clientIP is the address a storefront request is charged to and recorded
// with. X-Forwarded-For is believed only when the peer is a trusted proxy:
// then entries are read right to left (each proxy appends the address it
// saw) and the first one that is not a trusted proxy is the client. An
// unparsable entry stops the walk at the last address we can vouch for, so a
// client cannot smuggle an address past our proxies.
func clientIP(peer netip.Addr, xff [][]byte, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		rest := xff[i]
		for len(rest) > 0 {
			var part []byte
			if j := bytes.LastIndexByte(rest, ','); j >= 0 {
				part, rest = rest[j+1:], rest[:j]
			} else {
				part, rest = rest, nil
			}
			part = bytes.TrimSpace(part)
			if len(part) == 0 {
				continue
			}
			a, ok := parseForwarded(part)
			if !ok {
				return client
			}
			client = a
			if !isTrusted(a, trusted) {
				return a
			}
		}
	}
	return client
}

// parseForwarded reads one X-Forwarded-For entry: an address, or an
// address with a port ("203.0.113.7:5211", "[2001:db8::1]:443").
func parseForwarded(b []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(string(b)); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(string(b)); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
