package relay

import (
	"slices"
	"strings"
)

// TLSLevel is how much TLS mail to a destination gets, with the names of
// Postfix's smtp_tls_security_level.
type TLSLevel string

const (
	// TLSNone never starts TLS.
	TLSNone TLSLevel = "none"
	// TLSMay starts TLS when offered, unverified, and goes on in clear
	// when it is not offered or fails: the default.
	TLSMay TLSLevel = "may"
	// TLSEncrypt requires TLS, unverified: no STARTTLS, or a failed one,
	// defers (4.7.4, 4.7.5), the message never goes in clear.
	TLSEncrypt TLSLevel = "encrypt"
	// TLSVerify is TLSEncrypt with the certificate verified against the
	// MX host name (or relay_host's name) and Options.RootCAs.
	TLSVerify TLSLevel = "verify"
)

// below reports whether l asks for less TLS than m.
func (l TLSLevel) below(m TLSLevel) bool {
	order := []TLSLevel{TLSNone, TLSMay, TLSEncrypt, TLSVerify}
	return slices.Index(order, l) < slices.Index(order, m)
}

// tlsLevel is the level for mail to domain: Options.TLSPolicy's entry for
// the next hop (relay_host's host name when there is one, else domain),
// or for its nearest parent written ".parent"; TLSMay when none. AUTH to
// relay_host raises it to TLSVerify (TLSEncrypt with InsecureTLS): a
// password never goes in clear.
func (r *Relay) tlsLevel(domain string) TLSLevel {
	hop := domain
	if r.o.RelayHost != "" {
		hop, _, _ = r.relayHost()
	}
	hop = strings.ToLower(strings.TrimSuffix(hop, "."))
	level, ok := r.o.TLSPolicy[hop]
	for parent := hop; !ok && strings.Contains(parent, "."); {
		_, parent, _ = strings.Cut(parent, ".")
		level, ok = r.o.TLSPolicy["."+parent]
	}
	if !ok {
		level = TLSMay
	}
	if r.o.Auth != nil && r.o.RelayHost != "" {
		floor := TLSVerify
		if r.o.InsecureTLS {
			floor = TLSEncrypt
		}
		if level.below(floor) {
			level = floor
		}
	}
	return level
}
