package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Error is a failure to route or deliver, classified: Code is the RFC 3463
// enhanced status ("4.4.3", "5.1.10"), Reply the text for the log, mailq
// and the bounce.
type Error struct {
	Code  string
	Reply string
}

func (e *Error) Error() string { return e.Reply }

// Temporary reports whether the mail should wait and be tried again.
func (e *Error) Temporary() bool { return e.Code == "" || e.Code[0] != '5' }

func tempf(code, format string, args ...any) *Error {
	return &Error{Code: code, Reply: fmt.Sprintf(format, args...)}
}

// Host is one mail exchanger: its name and addresses, IPv6 first.
type Host struct {
	Name  string
	Pref  uint16
	Addrs []netip.Addr
}

// Resolver looks up MX, A and AAAA records at the given servers ("ip:port"),
// with recursion desired, trying each server in turn.
type Resolver struct {
	Servers []string
	Timeout time.Duration // per query and server; 0: 5 s
}

// SystemServers reads the nameservers of /etc/resolv.conf (port 53); it
// returns 127.0.0.1:53 when there are none, as the C library does.
func SystemServers() []string {
	var ss []string
	f, err := os.Open("/etc/resolv.conf")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[0] == "nameserver" {
				if a, err := netip.ParseAddr(fs[1]); err == nil {
					ss = append(ss, netip.AddrPortFrom(a, 53).String())
				}
			}
		}
	}
	if len(ss) == 0 {
		ss = []string{"127.0.0.1:53"}
	}
	return ss
}

// errNoData: the name exists but has no records of the type asked.
var errNoData = errors.New("no data")

// errNXDomain: the name does not exist.
var errNXDomain = errors.New("host not found")

// query asks for name's records of type t, following CNAME chains (up to 8
// links, asking again for the target when a server gives the CNAME alone).
// It returns the answer records of type t, errNXDomain, errNoData, or a
// temporary *Error.
func (r *Resolver) query(ctx context.Context, name string, t uint16) ([]dns.RR, error) {
	name = dns.Fqdn(name)
	for hop := 0; hop < 8; hop++ {
		in, err := r.exchange(ctx, name, t)
		if err != nil {
			return nil, err
		}
		switch in.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, errNXDomain
		default:
			return nil, tempf("4.4.3", "Name service error for name=%s type=%s: %s", strings.TrimSuffix(name, "."),
				dns.TypeToString[t], dns.RcodeToString[in.Rcode])
		}
		// Follow the chain within the answer: owner → CNAME target.
		cur := name
		for i := 0; i < 8; i++ {
			next := ""
			for _, rr := range in.Answer {
				if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) {
					next = c.Target
				}
			}
			if next == "" {
				break
			}
			cur = next
		}
		var out []dns.RR
		for _, rr := range in.Answer {
			if rr.Header().Rrtype == t && strings.EqualFold(rr.Header().Name, cur) {
				out = append(out, rr)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		if strings.EqualFold(cur, name) {
			return nil, errNoData
		}
		name = cur // a CNAME without its target's records: ask for them
	}
	return nil, tempf("4.4.3", "Name service error for name=%s: CNAME chain too long", name)
}

// exchange sends one question to the servers in turn until one answers
// with something other than SERVFAIL/REFUSED; TC answers are asked again
// over TCP.
func (r *Resolver) exchange(ctx context.Context, name string, t uint16) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	servers := r.Servers
	if len(servers) == 0 {
		servers = SystemServers()
	}
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	var last error
	var lastMsg *dns.Msg
	for _, srv := range servers {
		c := &dns.Client{Net: "udp", Timeout: timeout}
		in, _, err := c.ExchangeContext(ctx, m, srv)
		if err == nil && in.Truncated {
			c.Net = "tcp"
			in, _, err = c.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			last = err
			continue
		}
		if in.Rcode == dns.RcodeServerFailure || in.Rcode == dns.RcodeRefused {
			lastMsg = in
			continue
		}
		return in, nil
	}
	if lastMsg != nil {
		return lastMsg, nil
	}
	return nil, tempf("4.4.3", "Name service error for name=%s type=%s: %v", strings.TrimSuffix(name, "."),
		dns.TypeToString[t], last)
}

// LookupMX returns the mail exchangers of domain in the order to try them
// (RFC 5321 §5.1): by preference, equal preferences shuffled; with no MX
// record the domain itself (implicit MX). Errors are *Error: a null MX (RFC
// 7505) is 5.1.10, a domain that does not exist 5.1.2 (both permanent), a
// server failure or timeout 4.4.3. Hosts whose addresses cannot be found
// are left out; when none is left the error is temporary.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]Host, error) {
	domain = strings.TrimSuffix(domain, ".")
	if lit, ok := strings.CutPrefix(domain, "["); ok {
		// A domain literal, user@[192.0.2.1]: no DNS at all.
		a, err := netip.ParseAddr(strings.TrimPrefix(strings.TrimSuffix(lit, "]"), "IPv6:"))
		if err != nil {
			return nil, &Error{Code: "5.1.2", Reply: "bad address literal " + domain}
		}
		return []Host{{Name: domain, Addrs: []netip.Addr{a}}}, nil
	}
	rrs, err := r.query(ctx, domain, dns.TypeMX)
	switch {
	case errors.Is(err, errNXDomain):
		return nil, &Error{Code: "5.1.2", Reply: "Host or domain name not found. Name service error for name=" + domain + " type=MX: Host not found"}
	case errors.Is(err, errNoData):
		// RFC 5321 §5.1: no MX, the domain is its own exchanger.
		h := Host{Name: domain}
		if h.Addrs, err = r.LookupHost(ctx, domain); err != nil {
			return nil, err
		}
		return []Host{h}, nil
	case err != nil:
		return nil, err
	}
	var mxs []*dns.MX
	for _, rr := range rrs {
		mxs = append(mxs, rr.(*dns.MX))
	}
	if len(mxs) == 1 && mxs[0].Mx == "." {
		return nil, &Error{Code: "5.1.10", Reply: "Domain " + domain + " does not accept mail (nullMX)"}
	}
	rand.Shuffle(len(mxs), func(i, j int) { mxs[i], mxs[j] = mxs[j], mxs[i] })
	slices.SortStableFunc(mxs, func(a, b *dns.MX) int { return int(a.Preference) - int(b.Preference) })
	var hosts []Host
	var lastErr error
	for _, mx := range mxs {
		if mx.Mx == "." {
			continue
		}
		name := strings.TrimSuffix(mx.Mx, ".")
		addrs, err := r.LookupHost(ctx, name)
		if err != nil {
			lastErr = err
			continue
		}
		hosts = append(hosts, Host{Name: name, Pref: mx.Preference, Addrs: addrs})
	}
	if len(hosts) == 0 {
		if e, ok := lastErr.(*Error); ok {
			return nil, &Error{Code: "4" + e.Code[1:], Reply: e.Reply} // another MX may come back
		}
		return nil, tempf("4.4.3", "no usable mail exchanger for %s", domain)
	}
	return hosts, nil
}

// LookupHost returns the IPv6 and IPv4 addresses of name, IPv6 first. A
// name with neither is a permanent 5.1.2 (NXDOMAIN, or no A and no AAAA).
func (r *Resolver) LookupHost(ctx context.Context, name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(name); err == nil {
		return []netip.Addr{a}, nil
	}
	var addrs []netip.Addr
	var nx int
	var temp error
	for _, t := range []uint16{dns.TypeAAAA, dns.TypeA} {
		rrs, err := r.query(ctx, name, t)
		switch {
		case errors.Is(err, errNXDomain):
			nx++
		case errors.Is(err, errNoData):
		case err != nil:
			temp = err
		}
		for _, rr := range rrs {
			var ip net.IP
			switch v := rr.(type) {
			case *dns.AAAA:
				ip = v.AAAA
			case *dns.A:
				ip = v.A
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, nil
	case temp != nil:
		return nil, temp
	case nx > 0:
		return nil, &Error{Code: "5.1.2", Reply: "Host or domain name not found. Name service error for name=" + name + " type=A: Host not found"}
	}
	return nil, &Error{Code: "5.1.2", Reply: "Host or domain name not found. Name service error for name=" + name + " type=A: No address associated with hostname"}
}
