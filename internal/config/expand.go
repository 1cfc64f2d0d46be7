package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// expander computes the final value of each key: the file's text or the
// default, with $name, ${name} and $$ expanded as Postfix does.
type expander struct {
	file   string
	set    map[string]setting // what the file says
	done   map[string]string  // final values computed so far
	active []string           // keys being expanded, outermost first
}

// value returns the expanded value of key name. Errors are *Error at the
// line of the value that holds the fault; a fault met inside a default is
// returned plain, for the key in the file that refers to it to claim.
func (x *expander) value(name string) (string, error) {
	if v, ok := x.done[name]; ok {
		return v, nil
	}
	for i, a := range x.active {
		if a == name {
			loop := append(slices.Clone(x.active[i:]), name)
			return "", fmt.Errorf("recursive expansion: %s", strings.Join(loop, " -> "))
		}
	}
	s, ok := x.set[name]
	if !ok {
		k := lookup(name)
		s.value = k.def
		if k.dynamic != nil {
			v, err := k.dynamic()
			if err != nil {
				return "", &Error{File: x.file, Err: fmt.Errorf("%s: %w", name, err)}
			}
			s.value = v
		}
	}
	x.active = append(x.active, name)
	v, err := expand(s.value, func(ref string) (string, error) {
		if lookup(ref) == nil {
			return "", fmt.Errorf("$%s: %w", ref, unknownKey(ref))
		}
		return x.value(ref)
	})
	x.active = x.active[:len(x.active)-1]
	if err != nil {
		var located *Error
		if errors.As(err, &located) {
			return "", err // located deeper down
		}
		if s.line == 0 && len(x.active) > 0 {
			return "", err // a default: the key in the file that refers to it is at fault
		}
		return "", &Error{File: x.file, Line: s.line, Err: fmt.Errorf("%s: %w", name, err)}
	}
	x.done[name] = v
	return v, nil
}

// expand replaces $name and ${name} in s by resolve(name), and $$ by "$".
func expand(s string, resolve func(string) (string, error)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		var name string
		switch {
		case strings.HasPrefix(s, "$"):
			b.WriteByte('$')
			s = s[1:]
			continue
		case strings.HasPrefix(s, "{"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", errors.New(`"${" without "}"`)
			}
			name, s = s[1:end], s[end+1:]
			if name == "" || strings.IndexFunc(name, notNameRune) >= 0 {
				return "", fmt.Errorf("%q is not a key name", "${"+name+"}")
			}
		default:
			end := strings.IndexFunc(s, notNameRune)
			if end < 0 {
				end = len(s)
			}
			name, s = s[:end], s[end:]
			if name == "" {
				return "", errors.New(`"$" is not followed by a key name (write "$$" for a "$")`)
			}
		}
		v, err := resolve(name)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		if b.Len() > maxLine {
			return "", fmt.Errorf("value longer than %d bytes after expansion", maxLine)
		}
	}
	return b.String(), nil
}

// notNameRune reports whether r cannot appear in a key name.
func notNameRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
}
