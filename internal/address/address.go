// Package address handles envelope addresses (RFC 5321 §4.1.2 Mailbox):
// parsing what users and clients write, splitting local part and domain, and
// qualifying bare user names with a domain.
//
// An envelope address is kept as local@domain with the domain lower-cased
// and the local part as given (it is case-sensitive, RFC 5321 §2.4). Accepted
// forms are those of an RFC 5322 mailbox and more, as sendmail accepts them
// (ParseList): `user@domain`, `<user@domain>`, `Name <user@domain>`, a bare
// `user` (qualified by the caller), a quoted local part `"john doe"@domain`.
// Refused: empty addresses, control characters, unbalanced quotes or angle
// brackets, invalid UTF-8, an empty local part or domain, and a domain that is
// not a hostname or an address literal.
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is an address that cannot be used, with the reason.
type Error struct {
	Addr   string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%q: %s", e.Addr, e.Reason) }

// ErrEmpty is returned for an empty address where one is required.
var ErrEmpty = errors.New("empty address")

// Parse reads one address as a user or a client writes it and returns it as
// local@domain, or just the local part when it has no domain.
func Parse(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &Error{s, "not UTF-8"}
	}
	list, err := ParseList(s)
	if err != nil {
		return "", &Error{s, err.Error()}
	}
	switch len(list) {
	case 0:
		return "", ErrEmpty
	case 1:
	default:
		return "", &Error{s, "more than one address"}
	}
	local, domain, hasDomain := Split(list[0])
	if !hasDomain {
		return local, nil
	}
	if err := checkDomain(domain); err != nil {
		return "", &Error{s, err.Error()}
	}
	return local + "@" + strings.ToLower(domain), nil
}

// Split divides an address at its last @ outside quotes.
func Split(addr string) (local, domain string, ok bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' && !inQuotes(addr, i) {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}

// Qualify appends @domain to a bare local part, as sendmail and Postfix do
// for locally submitted mail (append_at_myorigin).
func Qualify(addr, domain string) string {
	if _, _, ok := Split(addr); ok || addr == "" {
		return addr
	}
	return addr + "@" + strings.ToLower(domain)
}

// Domain returns the lower-cased domain of addr, or "" when it has none.
func Domain(addr string) string {
	_, d, _ := Split(addr)
	return strings.ToLower(d)
}

// inQuotes reports whether position i of s lies inside a quoted string.
func inQuotes(s string, i int) bool {
	quoted := false
	for j := 0; j < i; j++ {
		switch s[j] {
		case '\\':
			if quoted {
				j++
			}
		case '"':
			quoted = !quoted
		}
	}
	return quoted
}

func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty domain")
	}
	if strings.HasPrefix(d, "[") {
		if !strings.HasSuffix(d, "]") || len(d) < 3 {
			return errors.New("bad address literal")
		}
		return nil
	}
	if len(d) > 255 {
		return errors.New("domain longer than 255 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(d, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad domain %q", d)
		}
		for _, r := range label {
			// Letters, digits, hyphens; UTF-8 for SMTPUTF8 (RFC 6531).
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 0x7f) {
				return fmt.Errorf("bad character %q in domain", r)
			}
		}
	}
	return nil
}
