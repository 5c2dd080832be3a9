package auth

import "net/netip"

// AddressKey is the key a client address is rate limited under: an IPv4
// address as it is, an IPv6 address by its /64 (one subscriber's network:
// a single host can use any address in it), and an IPv4 address mapped
// into IPv6 as the IPv4 address. Anything that does not parse is its own
// key, unchanged.
func AddressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}
