package aliases

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"yubin/internal/address"
)

// maxLine bounds one physical line, and maxEntry one entry with its
// continuation lines, so that a broken file cannot exhaust memory.
const (
	maxLine  = 1 << 20
	maxEntry = 16 << 20
)

// File is a parsed aliases file.
type File struct {
	Name    string // the path, as used in messages
	Aliases []*Alias
	index   map[string]*Alias
	stamp   stamp // the text's size and mtime when read by ReadFile
}

// Lookup returns the entry for name (folded), or nil.
func (f *File) Lookup(name string) *Alias { return f.index[foldName(name)] }

// Parse reads an aliases file; name is used in messages. It returns every bad
// line as an *Error, and the entries that are good: an entry keeps its good
// targets, and one with none left is dropped.
func Parse(name string, r io.Reader) (*File, []error) {
	f := &File{Name: name, index: make(map[string]*Alias)}
	p := &parser{file: name}
	var cur *entry     // the entry being read
	skipping := false  // indented lines after a bad one are part of it
	backslash := false // the line before ended in a backslash
	finish := func() {
		if cur != nil {
			p.entry(f, cur)
			cur = nil
		}
	}
	p.lines(r, func(n int, text string) {
		switch {
		case backslash:
			backslash = false
			if cur != nil {
				cur.add(n, text)
			}
		case isBlankOrComment(text):
			return
		case text[0] == ' ' || text[0] == '\t':
			if cur == nil {
				if !skipping {
					p.errorf(n, "indented line continues no alias (an alias starts at the beginning of a line)")
				}
				skipping = true
				return
			}
			cur.add(n, text)
		default:
			finish()
			skipping = false
			cur = &entry{}
			cur.add(n, text)
		}
		if cur != nil && strings.HasSuffix(text, `\`) {
			cur.text = cur.text[:len(cur.text)-1]
			backslash = true
		}
		if cur != nil && len(cur.text) > maxEntry {
			p.errorf(cur.segs[0].line, "alias longer than %d bytes", maxEntry)
			cur = nil
			skipping = true
		}
	})
	finish()
	return f, p.errs
}

// ParseTargets reads an :include: or .forward file: targets separated by
// commas, one or more a line; blank lines and lines whose first non-blank
// character is "#" are skipped. name is used in messages.
func ParseTargets(name string, r io.Reader) ([]Target, []error) {
	p := &parser{file: name}
	var targets []Target
	p.lines(r, func(n int, text string) {
		if isBlankOrComment(text) {
			return
		}
		targets = append(targets, p.targets(&entry{segs: []segment{{line: n}}}, text, 0)...)
	})
	return targets, p.errs
}

func isBlankOrComment(text string) bool {
	t := strings.TrimLeft(text, " \t")
	return t == "" || t[0] == '#'
}

type parser struct {
	file string
	errs []error
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Err: fmt.Errorf(format, args...)})
}

// lines calls fn with each physical line, without its line ending (LF or
// CRLF). A line too long is reported and skipped.
func (p *parser) lines(r io.Reader, fn func(n int, text string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	tooLong := false
	for n := 1; ; {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			if err != io.EOF {
				// Line 0: the file could not be read, no line is at fault.
				p.errs = append(p.errs, &Error{File: p.file, Err: err})
			}
			return
		}
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > maxLine {
				p.errorf(n, "line longer than %d bytes", maxLine)
				tooLong, buf = true, buf[:0]
			}
		}
		if isPrefix {
			continue
		}
		if !tooLong {
			fn(n, strings.TrimSuffix(string(buf), "\r"))
		}
		buf, tooLong = buf[:0], false
		n++
	}
}

// entry is one logical line: physical lines joined, with where each began.
type entry struct {
	text []byte
	segs []segment
}

type segment struct {
	line int // physical line number
	off  int // where it starts in the joined text
}

func (e *entry) add(n int, text string) {
	e.segs = append(e.segs, segment{line: n, off: len(e.text)})
	e.text = append(e.text, text...)
}

// lineAt returns the physical line of offset off in the joined text.
func (e *entry) lineAt(off int) int {
	line := e.segs[0].line
	for _, s := range e.segs {
		if s.off > off {
			break
		}
		line = s.line
	}
	return line
}

// entry parses "name: targets" and adds it to f.
func (p *parser) entry(f *File, e *entry) {
	text := string(e.text)
	line := e.segs[0].line
	colon := indexUnquoted(text, ':')
	if colon < 0 {
		p.errorf(line, "missing colon: want \"name: target, ...\"")
		return
	}
	name, err := parseName(strings.TrimSpace(text[:colon]))
	if err != nil {
		p.errorf(line, "%v", err)
		return
	}
	value := strings.TrimLeft(text[colon+1:], " \t")
	if strings.TrimSpace(value) == "" {
		p.errorf(line, "missing value for alias %q", name)
		return
	}
	nerr := len(p.errs)
	targets := p.targets(e, text[colon+1:], colon+1)
	if prev := f.index[name]; prev != nil {
		p.errorf(line, "alias %q already defined at line %d", name, prev.Line)
		return
	}
	if len(targets) == 0 {
		if len(p.errs) == nerr {
			p.errorf(line, "missing value for alias %q", name)
		}
		return
	}
	a := &Alias{Name: name, Targets: targets, Line: line, Value: value}
	f.Aliases = append(f.Aliases, a)
	f.index[name] = a
}

// targets parses a comma-separated list that starts at offset base of e.
func (p *parser) targets(e *entry, list string, base int) []Target {
	var out []Target
	for _, el := range splitList(list) {
		s := strings.TrimSpace(el.text)
		if s == "" {
			continue
		}
		line := e.lineAt(base + el.off + (len(el.text) - len(strings.TrimLeft(el.text, " \t"))))
		t, err := parseTarget(s)
		if err != nil {
			p.errorf(line, "%v", err)
			continue
		}
		t.Line = line
		out = append(out, t)
	}
	return out
}

type element struct {
	text string
	off  int
}

// splitList splits at commas outside "quotes", <angle brackets> and
// (comments), honouring backslash escapes in quotes and comments.
func splitList(s string) []element {
	var out []element
	start, angle, paren, quoted := 0, 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (quoted || paren > 0):
			i++
		case quoted:
			if c == '"' {
				quoted = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			paren++
		case c == ')' && paren > 0:
			paren--
		case paren > 0:
		case c == '<':
			angle++
		case c == '>' && angle > 0:
			angle--
		case c == ',' && angle == 0:
			out = append(out, element{s[start:i], start})
			start = i + 1
		}
	}
	return append(out, element{s[start:], start})
}

// indexUnquoted returns the index of the first c outside double quotes.
func indexUnquoted(s string, c byte) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == c && !quoted:
			return i
		}
	}
	return -1
}

// parseName checks an alias name and returns it unquoted and folded.
func parseName(s string) (string, error) {
	if s == "" {
		return "", errors.New("missing alias name before the colon")
	}
	if err := checkText(s); err != nil {
		return "", fmt.Errorf("alias name %q: %v", s, err)
	}
	if s[0] == '"' {
		name, ok := unquote(s)
		if !ok {
			return "", fmt.Errorf("alias name %s: bad quoting", s)
		}
		if name == "" {
			return "", errors.New("empty alias name")
		}
		return strings.ToLower(name), nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '@':
			return "", fmt.Errorf("alias name %q has a domain: aliases are local names", s)
		case c == '.' || address.IsAtext(c):
		default:
			return "", fmt.Errorf("alias name %q: %q must be quoted (\"...\")", s, c)
		}
	}
	return strings.ToLower(s), nil
}

// parseTarget reads one target (trimmed, not empty).
func parseTarget(s string) (Target, error) {
	if err := checkText(s); err != nil {
		return Target{}, fmt.Errorf("%q: %v", s, err)
	}
	// A whole quoted target: "|command, args", "/path with space", or a
	// quoted local name.
	if s[0] == '"' {
		if inner, ok := unquote(s); ok {
			switch {
			case strings.HasPrefix(inner, "|"), strings.HasPrefix(inner, "/"), hasIncludePrefix(inner):
				return parseTarget(inner)
			case inner == "":
				return Target{}, errors.New(`empty name ""`)
			}
			return Target{Kind: Local, Value: strings.ToLower(inner)}, nil
		}
	}
	switch {
	case s[0] == '|':
		cmd := strings.TrimSpace(s[1:])
		if cmd == "" {
			return Target{}, errors.New("empty command after |")
		}
		return Target{Kind: Pipe, Value: cmd}, nil
	case s[0] == '/':
		return Target{Kind: Append, Value: s}, nil
	case hasIncludePrefix(s):
		path := strings.TrimSpace(s[len(":include:"):])
		if unq, ok := unquote(path); ok && strings.HasPrefix(path, `"`) {
			path = unq
		}
		if !strings.HasPrefix(path, "/") {
			return Target{}, fmt.Errorf("%q: :include: needs an absolute path", s)
		}
		return Target{Kind: Include, Value: path}, nil
	case s[0] == '\\':
		name, err := parseLocal(s[1:])
		if err != nil {
			return Target{}, fmt.Errorf("%q: %v", s, err)
		}
		return Target{Kind: Mailbox, Value: name}, nil
	}
	if indexUnquoted(s, ':') >= 0 {
		return Target{}, fmt.Errorf("%q: unexpected ':' (groups and source routes are not targets; :include: starts a target)", s)
	}
	addr, err := address.Parse(s)
	if err != nil {
		if len(strings.Fields(s)) > 1 {
			if _, err2 := address.Parse(strings.Fields(s)[0]); err2 == nil {
				return Target{}, fmt.Errorf("%q: missing comma between targets?", s)
			}
		}
		var ae *address.Error
		if errors.As(err, &ae) {
			return Target{}, fmt.Errorf("bad address %q: %s", s, ae.Reason)
		}
		return Target{}, fmt.Errorf("bad address %q: %v", s, err)
	}
	local, domain, hasDomain := address.Split(addr)
	if !hasDomain {
		name, err := parseLocal(local)
		if err != nil {
			return Target{}, fmt.Errorf("%q: %v", s, err)
		}
		return Target{Kind: Local, Value: name}, nil
	}
	return Target{Kind: Address, Value: local + "@" + domain}, nil
}

func hasIncludePrefix(s string) bool {
	return len(s) >= len(":include:") && strings.EqualFold(s[:len(":include:")], ":include:")
}

// parseLocal reads a local name, possibly quoted, and folds it.
func parseLocal(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		name, ok := unquote(s)
		if !ok || name == "" {
			return "", fmt.Errorf("bad quoted name %s", s)
		}
		return strings.ToLower(name), nil
	}
	if s == "" {
		return "", errors.New("empty name")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && !address.IsAtext(c) {
			return "", fmt.Errorf("bad character %q in name", c)
		}
	}
	return strings.ToLower(s), nil
}

// unquote returns the text of a quoted string that is all of s.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		switch c {
		case '\\':
			i++
			if i >= len(s)-1 {
				return "", false
			}
			b.WriteByte(s[i])
		case '"':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// checkText refuses what no target may hold: invalid UTF-8, NUL and other
// control characters (a tab is allowed).
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return fmt.Errorf("control character %q", r)
		}
	}
	return nil
}
