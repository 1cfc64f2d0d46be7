package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// The value syntaxes. Each parser gets a final (expanded, trimmed) value and
// says what is wrong with it without the key name, which Parse adds.

// fields splits a list on commas and whitespace, as Postfix does.
func fields(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// isHostName reports whether s is a plausible host or domain name: dot-separated
// labels of letters, digits, '-' and '_' (seen in real hostnames), at most
// 253 bytes. An IPv4 address passes too.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if notNameRune(r) && r != '-' {
				return false
			}
		}
	}
	return true
}

func parseHostname(v string) (string, error) {
	if !isHostName(v) {
		return "", fmt.Errorf("%q is not a host name", v)
	}
	return v, nil
}

// parseDomains lower-cases, drops a trailing dot and duplicates (the default
// lists "localhost" twice when the hostname is "localhost").
func parseDomains(v string) ([]string, error) {
	var ds []string
	for _, f := range fields(v) {
		d := strings.ToLower(strings.TrimSuffix(f, "."))
		if !isHostName(d) {
			return nil, fmt.Errorf("%q is not a domain name", f)
		}
		dup := false
		for _, have := range ds {
			dup = dup || have == d
		}
		if !dup {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

func parseRequired(v string) (string, error) {
	if v == "" {
		return "", errors.New("must not be empty")
	}
	return v, nil
}

// parseMailDir allows %u and %d anywhere and "~" (the user's home) as the
// first element; a "~" elsewhere is an ordinary character.
func parseMailDir(v string) (string, error) {
	if v == "" {
		return "", errors.New("must not be empty")
	}
	if strings.HasPrefix(v, "~") && v != "~" && !strings.HasPrefix(v, "~/") {
		return "", fmt.Errorf("%q: a leading \"~\" must be followed by \"/\" (~user is not understood)", v)
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			continue
		}
		if i+1 == len(v) || v[i+1] != 'u' && v[i+1] != 'd' {
			return "", fmt.Errorf("%q: %q is neither %%u (user) nor %%d (domain)", v, v[i:min(i+2, len(v))])
		}
		i++
	}
	return v, nil
}

// parseListen takes host:port addresses as net.Listen does; host may be
// empty (all addresses), an IP address in brackets for IPv6, or a name.
func parseListen(v string) ([]string, error) {
	var as []string
	for _, f := range fields(v) {
		host, port, err := net.SplitHostPort(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not host:port", f)
		}
		if _, err := parsePort(port); err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		if _, err := netip.ParseAddr(host); host != "" && err != nil && !isHostName(host) {
			return nil, fmt.Errorf("%q: %q is neither an IP address nor a host name", f, host)
		}
		as = append(as, f)
	}
	return as, nil
}

// parsePrefixes takes CIDR prefixes and bare addresses (one host), with
// IPv6 optionally in Postfix's brackets: [::1]/128. Host bits set in a
// prefix are refused, as Postfix does, since they usually mean a typo.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, f := range fields(v) {
		s := f
		if strings.HasPrefix(s, "[") {
			s = strings.Replace(s[1:], "]", "", 1)
		}
		var p netip.Prefix
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			p = netip.PrefixFrom(a, a.BitLen())
		} else if p, err = netip.ParsePrefix(s); err != nil {
			return nil, fmt.Errorf("%q is not an IP address or prefix", f)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("%q has host bits set; did you mean %q?", f, p.Masked().String())
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// parseRelayHost checks [host]:port, [host], host:port or host, where a
// bracketed host may be an IP address. Brackets mean "this host, no MX
// lookup" (as in Postfix) and are kept for the relay to see.
func parseRelayHost(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	bad := fmt.Errorf("%q is not [host]:port, host:port or host", v)
	host, port, hasPort, literal := v, "", false, false
	if rest, ok := strings.CutPrefix(v, "["); ok {
		var closed bool
		if host, rest, closed = strings.Cut(rest, "]"); !closed {
			return "", bad
		}
		if port, hasPort = strings.CutPrefix(rest, ":"); rest != "" && !hasPort {
			return "", bad
		}
		a, err := netip.ParseAddr(host)
		literal = err == nil && a.Zone() == ""
	} else if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, port, hasPort = v[:i], v[i+1:], true
	}
	if !literal && !isHostName(host) {
		return "", bad
	}
	if hasPort {
		if _, err := parsePort(port); err != nil {
			return "", fmt.Errorf("%q: %w", v, err)
		}
	}
	return v, nil
}

// parseTLSPolicy takes comma-separated "domain level" entries
// ("example.com verify, .example.org encrypt"): a domain, or with a
// leading dot its subdomains, and one of Postfix's TLS security levels.
func parseTLSPolicy(v string) (map[string]string, error) {
	var p map[string]string
	for entry := range strings.SplitSeq(v, ",") {
		f := strings.Fields(entry)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%q is not \"domain level\"", strings.Join(f, " "))
		}
		d, level := strings.ToLower(strings.TrimSuffix(f[0], ".")), strings.ToLower(f[1])
		if !isHostName(strings.TrimPrefix(d, ".")) {
			return nil, fmt.Errorf("%q is not a domain or .domain", f[0])
		}
		switch level {
		case "none", "may", "encrypt", "verify":
		default:
			return nil, fmt.Errorf("%s: %q is not none, may, encrypt or verify", f[0], f[1])
		}
		if _, dup := p[d]; dup {
			return nil, fmt.Errorf("%s is listed twice", f[0])
		}
		if p == nil {
			p = map[string]string{}
		}
		p[d] = level
	}
	return p, nil
}

// parseDNSServers takes IP addresses with an optional port and gives ip:port.
// Names are refused: there is no resolver yet to look them up.
func parseDNSServers(v string) ([]string, error) {
	var ss []string
	for _, f := range fields(v) {
		ap, err := netip.ParseAddrPort(f)
		if err != nil {
			a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(f, "["), "]"))
			if err != nil || strings.HasPrefix(f, "[") != strings.HasSuffix(f, "]") {
				return nil, fmt.Errorf("%q is not an IP address with an optional :port", f)
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		if ap.Port() == 0 {
			return nil, fmt.Errorf("%q: port 0 is not a port", f)
		}
		ss = append(ss, ap.String())
	}
	return ss, nil
}

// parsePort takes a decimal port number 1-65535 (no service names: those
// would need /etc/services, and the numbers are clearer).
func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 || v[0] < '0' || v[0] > '9' {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", v)
	}
	return n, nil
}

// parseSize takes a byte count with an optional k, m or g suffix (x1024).
func parseSize(v string) (int64, error) {
	num, mult := v, int64(1)
	if v != "" {
		switch v[len(v)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			num = v[:len(v)-1]
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a size", v)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large a size", v)
	}
	return n * mult, nil
}

// parseUser takes a user name in the portable character set (POSIX
// 3.437): the name is looked up when a program drops privileges, not here.
func parseUser(v string) (string, error) {
	if v == "" || v[0] == '-' || strings.IndexFunc(v, func(r rune) bool { return notNameRune(r) && r != '-' && r != '.' }) >= 0 {
		return "", fmt.Errorf("%q is not a user name", v)
	}
	return v, nil
}
