package smtpserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"

	"yubin/internal/auth"
)

// The recipient policy, checked at RCPT (so that nothing accepted bounces
// later for want of a user, and no mail is relayed for strangers):
//
//   - a domain in LocalDomains: the local part must be an alias or a user
//     (550 5.1.1), and must not carry another destination (554 5.7.1): the
//     classic relay tricks "user@remote"@local, user%remote@local and
//     remote!user@local, which a later hop could route onwards. go-smtp
//     has already reduced a source route @local:user@remote to its last
//     address, user@remote, which is then a remote recipient;
//   - any other domain (an address literal included): only from a client
//     in RelayNetworks (not on the submission port) or one that
//     authenticated, else 554 5.7.1 relay access denied;
//   - a local submission (sendmail -bs) may send anywhere.
func (s *session) checkRcpt(o *Options, to string) error {
	if o.Local != nil {
		return nil
	}
	at := strings.LastIndexByte(to, '@')
	if at < 0 {
		return replyBadRecipient
	}
	local, domain := to[:at], to[at+1:]
	if !isLocalDomain(domain, o.LocalDomains) {
		if s.mayRelay(o) {
			return nil
		}
		return replyRelay
	}
	if strings.ContainsAny(local, "@%!") {
		return replyRelay
	}
	return localRecipient(o, local)
}

// mayRelay reports whether the client may send to other domains.
func (s *session) mayRelay(o *Options) bool {
	return s.authUser != "" || !o.Submission && inNetworks(s.client.addr, o.RelayNetworks)
}

// localRecipient checks that local is an alias or a user, looked up as the
// runner's expansion does (aliases.DB.Lookup, then the user folded to lower
// case). A lookup that fails is a temporary error (451 4.3.0).
func localRecipient(o *Options, local string) error {
	name := strings.ToLower(local)
	if o.Aliases != nil {
		_, ok, err := o.Aliases.Lookup(local)
		if err != nil {
			return replyLookupFailed
		}
		if ok {
			return nil
		}
	} else if name == "postmaster" {
		return nil // RFC 5321 §4.5.1
	}
	if o.Users == nil {
		return nil
	}
	_, err := o.Users.Lookup(name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrNoUser):
		return replyUnknownUser
	default:
		return replyLookupFailed
	}
}

func isLocalDomain(domain string, local []string) bool {
	domain = strings.TrimSuffix(domain, ".")
	return slices.ContainsFunc(local, func(d string) bool {
		return strings.EqualFold(strings.TrimSuffix(d, "."), domain)
	})
}

// inNetworks reports whether ip is in one of nets.
func inNetworks(ip string, nets []netip.Prefix) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// isLoopback reports whether ip is a loopback address (127/8, ::1).
func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Unmap().IsLoopback()
}

// lookupName is the default Options.LookupName: the first PTR name of ip
// whose own addresses include ip (forward-confirmed, as Postfix does before
// it names a client), else "".
func lookupName(ctx context.Context, ip string) string {
	names, err := net.DefaultResolver.LookupAddr(ctx, ip)
	if err != nil {
		return ""
	}
	want, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	for _, n := range names {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", n)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == want.Unmap() {
				return strings.TrimSuffix(n, ".")
			}
		}
	}
	return ""
}
