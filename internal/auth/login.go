package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Finder looks users up; *Directory is one.
type Finder interface {
	Lookup(name string) (*User, error)
	Virtual() bool
}

// ResolveLogin finds the user a mailbox server's login name means, as
// deliver finds a recipient's: "user" or "user@domain", lower-cased, with
// virtual users "user@domain" looked up before "user"; a bare name gets the
// domain hostname. It returns the user and the local part and domain that
// mail_dir's %u and %d stand for. An unusable name is ErrNoUser; so is
// system user root. With ErrNoUser, u is nil and the caller still checks a
// password (Authenticate with nil) so that the time taken tells nothing.
func ResolveLogin(d Finder, name, hostname string) (u *User, local, domain string, err error) {
	local, domain = name, hostname
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		local, domain = name[:i], name[i+1:]
	}
	local, domain = strings.ToLower(local), strings.ToLower(strings.TrimSuffix(domain, "."))
	if !ValidName(local) || strings.ContainsRune(local, '@') || !validDomain(domain) {
		return nil, "", "", fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	if d.Virtual() {
		u, err = d.Lookup(local + "@" + domain)
		if !errors.Is(err, ErrNoUser) {
			return u, local, domain, err
		}
	}
	u, err = d.Lookup(local)
	if err == nil && !u.Virtual && u.UID == 0 {
		return nil, "", "", fmt.Errorf("%w: %q: root may not log in", ErrNoUser, name)
	}
	return u, local, domain, err
}

// validDomain accepts a host name: what may become part of a path by %d.
func validDomain(d string) bool {
	if d == "" || len(d) > 255 || d[0] == '.' || d[0] == '-' || strings.Contains(d, "..") {
		return false
	}
	for _, c := range []byte(d) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
