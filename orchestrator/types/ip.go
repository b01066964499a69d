package types

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
)

// IP is an IP address that encodes as JSON null when unset. net.IP would
// encode an unset address as "", which does not match the schema's
// `"OverlayIP": null`.
type IP struct{ netip.Addr }

// ParseIP parses an IPv4 or IPv6 address.
func ParseIP(s string) (IP, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return IP{}, err
	}
	return IP{a}, nil
}

// MarshalJSON encodes an unset address as null and a set one as a string.
func (ip IP) MarshalJSON() ([]byte, error) {
	if !ip.IsValid() {
		return []byte("null"), nil
	}
	return json.Marshal(ip.String())
}

// UnmarshalJSON accepts null, "" or an address string.
func (ip *IP) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*ip = IP{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("IP must be a string or null: %w", err)
	}
	if s == "" {
		*ip = IP{}
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	*ip = IP{a}
	return nil
}
