// Package smtpserver is the SMTP side of yubin: a go-smtp Backend whose
// sessions put mail into the queue, served over TCP (smtpd) or over a
// reader/writer pair (sendmail -bs, inetd).
//
// # Protocol
//
// go-smtp (github.com/emersion/go-smtp v0.25.1) reads the commands and
// answers most of them itself; this package decides MAIL, RCPT and DATA.
// Spoken: SMTP and ESMTP (RFC 5321) with PIPELINING (RFC 2920), 8BITMIME
// (RFC 6152), ENHANCEDSTATUSCODES (RFC 2034, RFC 3463), CHUNKING (BDAT,
// RFC 3030), SMTPUTF8 (RFC 6531), DSN (RFC 3461: RET, ENVID, NOTIFY, ORCPT,
// kept in the envelope for the runner), SIZE (RFC 1870) and LIMITS RCPTMAX
// (RFC 9422). go-smtp answers VRFY with 252 2.5.0, and EXPN, HELP, TURN,
// SEND, SOML and SAML with 502 5.5.1; it wants HELO or EHLO before MAIL.
//
// Refused: MAIL inside a transaction (503 5.5.1); addresses with control
// characters (501); non-ASCII addresses without MAIL's SMTPUTF8 (553 5.6.7);
// more than MaxRecipients recipients (452 4.5.3, RFC 5321 §4.5.3.1.8);
// messages over MaxMessageBytes, counted as received with CRLF as RFC 1870
// counts (552 5.3.4, at MAIL when SIZE= says so, else at the end of DATA);
// BINARYMIME and REQUIRETLS (not offered). Over TCP, without a policy yet,
// a recipient is accepted only in Options.LocalDomains and without a relay
// trick in its local part (554 5.7.1), so no server built here is an open
// relay; a local submission (sendmail -bs) accepts every domain.
//
// Owed to go-smtp: an address must have a domain (RCPT TO:<postmaster>
// gets 501, though RFC 5321 §4.5.1 wants it taken); a quoted local part
// arrives without its quotes ("john doe"@x is john doe@x, kept so in the
// envelope; received.go quotes it again); after its fourth syntax error
// (unknown or mangled command) go-smtp closes the connection; a line over
// 2000 bytes ends the session.
//
// # What DATA stores
//
// The message goes into the queue as received, CRLF turned into LF (the
// queue's line ending), dot-stuffing undone by go-smtp, with our Received
// header on top (see received.go). "250 2.0.0 Ok: queued as ID" is written
// only after the queue's Commit returned (file and directory fsync'd), the
// log line was written and the runner was woken. Anything else leaves
// nothing in the queue: 552 5.3.4 for size, 451 4.3.0 when the queue fails.
//
// # The wire
//
// Every connection passes through wireConn (wire.go), which gives go-smtp's
// sequence errors the 503 that RFC 5321 §4.3.2 wants instead of its 502,
// notes whether the client greeted with HELO or EHLO (go-smtp keeps that to
// itself; the envelope and Received say SMTP or ESMTP), and applies an idle
// timeout to every read, so that a long DATA is not cut off by a
// per-command deadline. After STARTTLS (issue 5) it sees ciphertext and
// stops looking: go-smtp's 502s stay, and the protocol is taken as ESMTP.
package smtpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/queue"
)

// Defaults for the zero values of Options.
const (
	// DefaultMaxMessageBytes is message_size_limit's default.
	DefaultMaxMessageBytes = 26214400
	// DefaultMaxRecipients: RFC 5321 §4.5.3.1.8 requires at least 100
	// recipients per message to be accepted.
	DefaultMaxRecipients = 100
	// DefaultTimeout: RFC 5321 §4.5.3.2.7 gives the server 5 minutes.
	DefaultTimeout = 5 * time.Minute
)

// Options is what a server needs to know; cmd/ builds it from yubin.conf.
type Options struct {
	Hostname string       // greeting and Received: "by"
	Queue    *queue.Queue // where accepted mail goes

	// MaxMessageBytes (0: DefaultMaxMessageBytes) is enforced by go-smtp:
	// it is the SIZE in the EHLO reply, a larger SIZE= on MAIL is refused
	// there, and its DATA reader fails past it, counting the message as
	// sent (CRLF, after dot-unstuffing), as RFC 1870 counts. go-smtp's
	// reader refuses a message of exactly MaxMessageBytes too.
	MaxMessageBytes int64
	MaxRecipients   int           // 0: DefaultMaxRecipients
	Timeout         time.Duration // idle time per read and write; 0: DefaultTimeout

	// LocalDomains are the recipient domains a network client may send to
	// (local_domains). Issue 5 adds relay_networks and AUTH; until then
	// every other domain is refused over the network.
	LocalDomains []string

	// Local is the user running sendmail -bs: a local submission, which
	// accepts every recipient and names the user in the envelope and the
	// Received header. Only for a session on sendmail's own stdin; nil
	// for network clients.
	Local *LocalUser

	// Now is the clock for arrival times; nil: time.Now.
	Now func() time.Time
}

// LocalUser is the invoking user of a local submission.
type LocalUser struct {
	Name string // login name: envelope User and the log
	UID  int    // Received: "(yubin, from userid UID)", as Postfix writes it
}

// Server is go-smtp's server with our Backend, every connection passing
// through wireConn.
type Server struct {
	smtp    *smtp.Server
	timeout time.Duration
}

// NewServer checks opts and builds a server; Serve starts it.
func NewServer(opts Options) (*Server, error) {
	b, err := NewBackend(opts)
	if err != nil {
		return nil, err
	}
	s := smtp.NewServer(b)
	s.Domain = b.opts.Hostname
	s.MaxMessageBytes = b.opts.MaxMessageBytes
	s.MaxRecipients = b.opts.MaxRecipients
	s.WriteTimeout = b.opts.Timeout
	// No s.ReadTimeout: go-smtp would set one deadline per command line,
	// which would also bound the whole DATA; wireConn sets an idle
	// deadline before every read instead.
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true
	return &Server{smtp: s, timeout: b.opts.Timeout}, nil
}

// Serve accepts connections on l until Close or Shutdown.
func (s *Server) Serve(l net.Listener) error {
	return s.smtp.Serve(&wireListener{Listener: l, timeout: s.timeout})
}

// Shutdown stops accepting and waits for the sessions to end, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.smtp.Shutdown(ctx) }

// Close stops accepting and drops every session at once.
func (s *Server) Close() error { return s.smtp.Close() }

// ServeConn serves exactly one SMTP session on c (smtpd under inetd: the
// socket on stdin) with a server built from opts. It returns when the client
// has quit or gone, after the session's last reply was written, or when ctx
// is cancelled, which ends the session.
func ServeConn(ctx context.Context, opts Options, c net.Conn) error {
	s, err := NewServer(opts)
	if err != nil {
		return err
	}
	return s.serveOne(ctx, c)
}

// ServeStdio serves exactly one SMTP session reading commands from r and
// writing replies to w (sendmail -bs: stdin and stdout). Each reply is
// written to w whole before the next command is read, and ServeStdio returns
// after the last one (221 to QUIT), when r reaches EOF, or when ctx is
// cancelled. It closes neither r nor w.
func ServeStdio(ctx context.Context, opts Options, r io.Reader, w io.Writer) error {
	return ServeConn(ctx, opts, &pipeConn{r: r, w: w})
}

// serveOne runs s for the one connection c: go-smtp only serves listeners,
// so c is handed out by a listener whose second Accept waits for c to close.
func (s *Server) serveOne(ctx context.Context, c net.Conn) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wc := newWireConn(c, s.timeout)
	l := &oneConnListener{conn: wc, ready: make(chan net.Conn, 1), closed: make(chan struct{})}
	l.ready <- wc
	stop := context.AfterFunc(ctx, func() {
		s.smtp.Close()
		l.Close()
		wc.Close()
	})
	defer stop()

	err := s.smtp.Serve(l)
	// Serve returns once c is closed, which go-smtp does after its last
	// reply; its session goroutine may still be returning. Wait for it, so
	// that nothing runs after we return (unless ctx was cancelled: then
	// Shutdown does not wait for a goroutine stuck in a read).
	s.smtp.Shutdown(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("smtpserver: %w", err)
	}
	return nil
}
