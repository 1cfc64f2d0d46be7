package smtpserver

import (
	"errors"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Backend is our smtp.Backend: it starts a session for every client that
// says HELO or EHLO. NewServer puts it in a go-smtp server whose
// connections pass through wireConn; under a bare smtp.Server every
// session would count as ESMTP and sequence errors would get go-smtp's 502.
type Backend struct {
	opts Options
}

var _ smtp.Backend = (*Backend)(nil)

// NewBackend checks opts and fills in the defaults of its zero fields.
func NewBackend(opts Options) (*Backend, error) {
	if opts.Queue == nil {
		return nil, errors.New("smtpserver: no queue")
	}
	if opts.Hostname == "" {
		return nil, errors.New("smtpserver: no hostname")
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.MaxRecipients <= 0 {
		opts.MaxRecipients = DefaultMaxRecipients
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Backend{opts: opts}, nil
}

// NewSession is called by go-smtp at the client's first HELO or EHLO (and
// again after STARTTLS).
func (b *Backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{b: b, conn: c}
	if b.opts.Local == nil {
		s.client = remoteClient(c.Conn().RemoteAddr())
		// Issue 5: the client's reverse DNS name (s.client.name, checked
		// forward), relay_networks and the connection-time policy go here.
	}
	return s, nil
}

// client is who is on the other end, as the envelope and Received name it.
type client struct {
	addr string // IP address; "" for a local submission
	name string // verified reverse DNS name; "" when unknown
}

func remoteClient(a net.Addr) client {
	var c client
	if ta, ok := a.(*net.TCPAddr); ok {
		c.addr = ta.AddrPort().Addr().Unmap().WithZone("").String()
	}
	return c
}

// acceptsDomain reports whether a network client may send to addr: the
// minimal no-open-relay rule until issue 5's policy. The domain must be one
// of LocalDomains, and the local part must not carry another destination
// ("user@remote"@local, user%remote@local, remote!user@local; go-smtp has
// already dropped a source route "@local:user@remote" to "user@remote").
func (b *Backend) acceptsDomain(addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if strings.ContainsAny(local, "@%!") {
		return false
	}
	for _, d := range b.opts.LocalDomains {
		if strings.EqualFold(strings.TrimSuffix(d, "."), domain) {
			return true
		}
	}
	return false
}
