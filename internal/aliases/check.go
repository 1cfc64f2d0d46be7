package aliases

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"yubin/internal/address"
	"yubin/internal/auth"
)

// Check returns warnings for targets that will fail when mail comes: a local
// name that is neither an alias of f nor a user, a \user that is no user, an
// :include: file that cannot be read, and postmaster or mailer-daemon
// defaulting to a root that does not resolve. Each names the file and line.
// newaliases prints them and compiles the file all the same: the
// administrator fixes the names, or the users arrive later.
func (f *File) Check(users Users, localDomains []string) []error {
	var warns []error
	known := func(name string) (bool, error) {
		if f.Lookup(name) != nil || defaults[name] != nil {
			return true, nil
		}
		_, err := users.Lookup(name)
		if errors.Is(err, auth.ErrNoUser) {
			return false, nil
		}
		return err == nil, err
	}
	warn := func(line int, format string, args ...any) {
		warns = append(warns, &Error{File: f.Name, Line: line, Err: fmt.Errorf(format, args...)})
	}
	for _, a := range f.Aliases {
		for _, t := range a.Targets {
			name := ""
			switch t.Kind {
			case Local:
				name = t.Value
			case Address:
				local, domain, _ := address.Split(t.Value)
				if isLocalDomain(domain, localDomains) {
					name = foldName(local)
				}
			case Mailbox:
				if _, err := users.Lookup(t.Value); errors.Is(err, auth.ErrNoUser) {
					warn(t.Line, "alias %q: %s: no such user", a.Name, t)
				} else if err != nil {
					warn(t.Line, "alias %q: %s: %v", a.Name, t, err)
				}
			case Include:
				if fd, err := os.Open(t.Value); err != nil {
					warn(t.Line, "alias %q: %s: %v", a.Name, t, unwrapPath(err))
				} else {
					fd.Close()
				}
			}
			if name == "" {
				continue
			}
			if ok, err := known(name); err != nil {
				warn(t.Line, "alias %q: %s: %v", a.Name, t, err)
			} else if !ok {
				warn(t.Line, "alias %q: %s is neither an alias nor a local user", a.Name, t)
			}
		}
	}
	for _, name := range []string{"postmaster", "mailer-daemon"} {
		if f.Lookup(name) != nil {
			continue
		}
		if ok, err := known("root"); !ok && err == nil {
			warn(0, "%s is not in the file and defaults to root, which is neither an alias nor a local user", name)
		}
	}
	return warns
}

func isLocalDomain(domain string, localDomains []string) bool {
	domain = strings.TrimSuffix(domain, ".")
	for _, d := range localDomains {
		if strings.EqualFold(strings.TrimSuffix(d, "."), domain) {
			return true
		}
	}
	return false
}
