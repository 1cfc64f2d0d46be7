// Package address handles envelope addresses (RFC 5321 §4.1.2 Mailbox):
// parsing what users and clients write, splitting local part and domain, and
// qualifying bare user names with a domain.
//
// An envelope address is kept as local@domain with the domain lower-cased
// and the local part as given (it is case-sensitive, RFC 5321 §2.4). Accepted
// forms: `user@domain`, `<user@domain>`, `Name <user@domain>`, a bare `user`
// (qualified by the caller), and a quoted local part `"john doe"@domain`.
// Refused: empty addresses, control characters, unbalanced quotes or angle
// brackets, invalid UTF-8, an empty local part or domain, and a domain that is not a
// hostname or an address literal.
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
	in := s
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && !inQuotes(s, i) {
		if !strings.HasSuffix(s, ">") {
			return "", &Error{in, "unbalanced angle brackets"}
		}
		s = s[i+1 : len(s)-1]
	} else if strings.ContainsAny(s, "<>") && !strings.HasPrefix(s, `"`) {
		return "", &Error{in, "unbalanced angle brackets"}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	if !utf8.ValidString(s) {
		return "", &Error{in, "not UTF-8"}
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", &Error{in, "control character in address"}
		}
	}
	local, domain, hasDomain := Split(s)
	if err := checkLocal(local); err != nil {
		return "", &Error{in, err.Error()}
	}
	if !hasDomain {
		return local, nil
	}
	if err := checkDomain(domain); err != nil {
		return "", &Error{in, err.Error()}
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

func checkLocal(l string) error {
	if l == "" {
		return errors.New("empty local part")
	}
	if l[0] == '"' {
		// quoted-string: backslash escapes one character; the only
		// unescaped quote after the first is the last character.
		for i := 1; i < len(l); i++ {
			switch l[i] {
			case '\\':
				i++
			case '"':
				if i != len(l)-1 {
					return errors.New("text after the quoted local part")
				}
				return nil
			}
		}
		return errors.New("unbalanced quotes in local part")
	}
	if strings.ContainsAny(l, "\" \t()<>,;:[]\\") {
		return errors.New("special character in unquoted local part")
	}
	return nil
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
