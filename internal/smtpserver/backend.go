package smtpserver

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/queue"
)

// Backend is our smtp.Backend: it starts a session for every client that
// says HELO or EHLO. NewServer puts it in a go-smtp server whose
// connections pass through wireConn; under a bare smtp.Server every
// session would count as ESMTP and sequence errors would get go-smtp's 502.
type Backend struct {
	opts atomic.Pointer[Options] // swapped whole by reload (SIGHUP)
	// group commits the messages of concurrent sessions together (one
	// syncfs and one fsync of msg/ per batch: queue.Committer); nil for a
	// local submission, which commits alone.
	group *queue.Committer
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
	if opts.DataTimeout <= 0 {
		opts.DataTimeout = DefaultDataTimeout
	}
	if opts.MaxErrors <= 0 {
		opts.MaxErrors = DefaultMaxErrors
	}
	if opts.LookupName == nil {
		opts.LookupName = lookupName
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Backend{}
	if opts.Local == nil {
		b.group = opts.Queue.NewCommitter()
	}
	b.opts.Store(&opts)
	return b, nil
}

// options are the options in force; a session reads them at each command,
// so that a reload applies to the next one.
func (b *Backend) options() *Options { return b.opts.Load() }

// reload takes the policy fields of n.
func (b *Backend) reload(n Options) {
	o := *b.options()
	o.LocalDomains, o.RelayNetworks = n.LocalDomains, n.RelayNetworks
	o.Aliases, o.Users = n.Aliases, n.Users
	o.MaxConnsPerClient = n.MaxConnsPerClient
	if n.MaxErrors > 0 {
		o.MaxErrors = n.MaxErrors
	}
	b.opts.Store(&o)
}

// NewSession is called by go-smtp at the client's first HELO or EHLO (and
// again after STARTTLS).
func (b *Backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{b: b, conn: c, wire: wireOf(c.Conn())}
	o := b.options()
	if o.Local == nil {
		s.client = remoteClient(c.Conn().RemoteAddr())
		if s.wire != nil && s.client.addr != "" {
			s.client.name = s.wire.clientName(func() string {
				ctx, cancel := context.WithTimeout(context.Background(), DefaultLookupTimeout)
				defer cancel()
				return o.LookupName(ctx, s.client.addr)
			})
		}
	}
	return s, nil
}

// clientName returns the client's reverse name, looking it up once per
// connection (not again after STARTTLS).
func (c *wireConn) clientName(lookup func() string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.named {
		c.name, c.named = lookup(), true
	}
	return c.name
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
