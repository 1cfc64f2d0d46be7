package address

import (
	"fmt"
	"strings"
)

// ParseList returns the addresses in an RFC 5322 §3.4 address-list,
// in order, without display names, comments or group names: "local@domain",
// or "local" alone, which sendmail accepts for a local user and net/mail
// refuses (as it refuses the obsolete route <@a:u@b>, kept by §4.4).
// Quoted local parts keep their quotes. Empty list elements (§4.4) and empty
// groups ("undisclosed-recipients:;") yield nothing; "<>" yields nothing.
func ParseList(s string) ([]string, error) {
	toks, err := lexAddresses(s)
	if err != nil {
		return nil, err
	}
	p := &addrParser{toks: toks}
	for !p.end() {
		if p.is(",") {
			p.pos++
			continue
		}
		if err := p.address(false); err != nil {
			return nil, err
		}
		if !p.end() && !p.is(",") {
			return nil, fmt.Errorf("unexpected %q after an address", p.toks[p.pos].text)
		}
	}
	return p.out, nil
}

type tokenKind int

const (
	tokAtom    tokenKind = iota // atext run; RFC 6532 UTF-8 allowed
	tokQuoted                   // quoted-string, quotes included
	tokLiteral                  // domain-literal, brackets included
	tokSpecial                  // one of < > : ; @ , .
)

type token struct {
	kind tokenKind
	text string
}

// IsAtext reports an RFC 5322 §3.2.3 atext byte, or any byte of a UTF-8
// sequence (RFC 6532 §3.2).
func IsAtext(c byte) bool {
	return c >= 0x80 || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// lexAddresses splits s into tokens, dropping white space and comments.
// Line breaks must have been unfolded; any control character is an error.
func lexAddresses(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			depth := 0
			for ; ; i++ {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated comment")
				}
				if s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
					return nil, fmt.Errorf("control character in comment")
				}
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '(' {
					depth++
				}
				if s[i] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			i++
		case c == '"' || c == '[':
			end := byte('"')
			kind := tokQuoted
			if c == '[' {
				end, kind = ']', tokLiteral
			}
			j := i + 1
			for ; j < len(s) && s[j] != end; j++ {
				if s[j] == '\\' {
					j++
				}
				if j < len(s) && (s[j] < ' ' && s[j] != '\t' || s[j] == 0x7f) {
					return nil, fmt.Errorf("control character in %q", s[i:])
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated %q", s[i:])
			}
			toks = append(toks, token{kind, s[i : j+1]})
			i = j + 1
		case strings.IndexByte("<>:;@,.", c) >= 0:
			toks = append(toks, token{tokSpecial, s[i : i+1]})
			i++
		case IsAtext(c):
			j := i
			for j < len(s) && IsAtext(s[j]) {
				j++
			}
			toks = append(toks, token{tokAtom, s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q", c)
		}
	}
	return toks, nil
}

type addrParser struct {
	toks []token
	pos  int
	out  []string
}

func (p *addrParser) end() bool { return p.pos >= len(p.toks) }

func (p *addrParser) is(special string) bool {
	return !p.end() && p.toks[p.pos].kind == tokSpecial && p.toks[p.pos].text == special
}

// words consumes a run of atoms, quoted-strings and dots: a display name
// or a local part.
func (p *addrParser) words() []token {
	start := p.pos
	for !p.end() && (p.toks[p.pos].kind == tokAtom || p.toks[p.pos].kind == tokQuoted || p.is(".")) {
		p.pos++
	}
	return p.toks[start:p.pos]
}

// address parses a mailbox, or a group when not already in one.
func (p *addrParser) address(inGroup bool) error {
	words := p.words()
	if p.end() || p.is(",") || p.is(";") {
		local, err := localPart(words)
		if err != nil {
			return err
		}
		p.out = append(p.out, local)
		return nil
	}
	switch t := p.toks[p.pos]; {
	case t.text == "<" && t.kind == tokSpecial:
		p.pos++
		return p.angleAddr()
	case t.text == "@" && t.kind == tokSpecial:
		p.pos++
		return p.addrSpec(words)
	case t.text == ":" && t.kind == tokSpecial && !inGroup:
		p.pos++
		return p.group()
	default:
		return fmt.Errorf("unexpected %q", t.text)
	}
}

// group parses the members of a group up to its ";" (left out at the end
// of the list, as lenient readers allow).
func (p *addrParser) group() error {
	for !p.end() {
		switch {
		case p.is(";"):
			p.pos++
			return nil
		case p.is(","):
			p.pos++
		default:
			if err := p.address(true); err != nil {
				return err
			}
			if !p.end() && !p.is(",") && !p.is(";") {
				return fmt.Errorf("unexpected %q in a group", p.toks[p.pos].text)
			}
		}
	}
	return nil
}

// angleAddr parses what follows "<": an optional obsolete route, an
// address, and ">".
func (p *addrParser) angleAddr() error {
	if p.is("@") { // obs-route: @a,@b:
		for !p.end() && !p.is(":") {
			p.pos++
		}
		if p.end() {
			return fmt.Errorf("unterminated route")
		}
		p.pos++
	}
	if p.is(">") {
		p.pos++
		return nil
	}
	words := p.words()
	if p.is("@") {
		p.pos++
		if err := p.addrSpec(words); err != nil {
			return err
		}
	} else {
		local, err := localPart(words)
		if err != nil {
			return err
		}
		p.out = append(p.out, local)
	}
	if !p.is(">") {
		return fmt.Errorf("missing '>'")
	}
	p.pos++
	return nil
}

// addrSpec parses the domain after local "@".
func (p *addrParser) addrSpec(local []token) error {
	l, err := localPart(local)
	if err != nil {
		return err
	}
	var d strings.Builder
	if !p.end() && p.toks[p.pos].kind == tokLiteral {
		if strings.Contains(p.toks[p.pos].text, "\t") {
			return fmt.Errorf("malformed domain after %s@", l)
		}
		d.WriteString(p.toks[p.pos].text)
		p.pos++
	} else {
		for {
			if p.end() || p.toks[p.pos].kind != tokAtom {
				return fmt.Errorf("malformed domain after %s@", l)
			}
			d.WriteString(p.toks[p.pos].text)
			p.pos++
			if !p.is(".") {
				break
			}
			d.WriteByte('.')
			p.pos++
		}
	}
	p.out = append(p.out, l+"@"+d.String())
	return nil
}

// localPart joins word *("." word) (RFC 5322 §3.4.1, §4.4).
func localPart(words []token) (string, error) {
	var b strings.Builder
	for i, w := range words {
		isDot := w.kind == tokSpecial
		// A tab may fold a quoted display name, not an address (RFC 5321
		// §4.1.2 qtextSMTP).
		if isDot != (i%2 == 1) || i == len(words)-1 && isDot || strings.Contains(w.text, "\t") {
			return "", fmt.Errorf("malformed address %q", join(words))
		}
		b.WriteString(w.text)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("empty address")
	}
	return b.String(), nil
}

func join(toks []token) string {
	var parts []string
	for _, t := range toks {
		parts = append(parts, t.text)
	}
	return strings.Join(parts, " ")
}
