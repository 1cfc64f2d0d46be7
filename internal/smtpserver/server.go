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
// parameters not known (555 5.5.4); BINARYMIME and REQUIRETLS (not offered).
//
// # Policy
//
// Recipients are checked at RCPT (policy.go): in LocalDomains they must be
// an alias or a user (550 5.1.1) without a relay trick in the local part;
// other domains only from RelayNetworks (port 25) or after AUTH (554
// 5.7.1). A local submission (sendmail -bs) accepts every domain. AUTH
// PLAIN and LOGIN (RFC 4954, auth.go) are offered on the submission port
// only, inside TLS or to a loopback client (else 538 5.7.11). STARTTLS
// (RFC 3207) is offered when Options.TLS is set; a session starts afresh
// after it.
//
// Limits: MaxErrors error replies end the session with 421 4.7.0;
// MaxConnsPerClient sessions at once per client IP outside RelayNetworks
// (421 4.7.0 at connection time); Timeout between commands and
// DataTimeout within a message (RFC 5321 §4.5.3.2: 5 and 10 minutes), then
// 421 4.4.2. Shutdown answers 421 4.3.2 to the sessions waiting for a
// command and lets a message in DATA finish first.
//
// Owed to go-smtp: an address must have a domain (RCPT TO:<postmaster>
// gets 501, though RFC 5321 §4.5.1 wants it taken); a quoted local part
// arrives without its quotes ("john doe"@x is john doe@x, kept so in the
// envelope; received.go quotes it again); a source route (@a:b@c) arrives
// as its last address (b@c); after its fourth syntax error (unknown or
// mangled command) go-smtp closes the connection (we say 421); a line over
// 2000 bytes ends the session (500 5.4.0).
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
// sequence errors the 503 that RFC 5321 §4.3.2 wants instead of its 502
// (and a few other fixed replies ours, see fixedReplies), notes whether the
// client greeted with HELO or EHLO (go-smtp keeps that to itself; the
// envelope and Received say SMTP or ESMTP), counts error replies, closes
// after a 421, and applies an idle timeout to every read, so that a long
// DATA is not cut off by a per-command deadline. After STARTTLS it sees
// ciphertext and stops looking: go-smtp's own replies stay as go-smtp
// writes them (502 for a sequence error), the protocol is taken as ESMTP
// (ESMTPS), and the session counts its own error replies.
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/aliases"
	"yubin/internal/auth"
	"yubin/internal/maillog"
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
	// DefaultDataTimeout: RFC 5321 §4.5.3.2.6, 10 minutes for the end of
	// data; between the blocks of a message, the same.
	DefaultDataTimeout = 10 * time.Minute
	// DefaultMaxErrors is Postfix's smtpd_hard_error_limit.
	DefaultMaxErrors = 20
	// DefaultLookupTimeout bounds the client's reverse DNS lookup.
	DefaultLookupTimeout = 5 * time.Second
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
	DataTimeout     time.Duration // idle time per read in DATA; 0: DefaultDataTimeout
	// MaxErrors error replies end the session with 421; 0: DefaultMaxErrors.
	MaxErrors int
	// MaxConnsPerClient bounds the sessions at once from one IP address
	// outside RelayNetworks; 0: no limit.
	MaxConnsPerClient int

	// LocalDomains are the recipient domains delivered here
	// (local_domains); their recipients must be an alias or a user.
	LocalDomains []string
	// RelayNetworks may send to other domains without AUTH, except on
	// the submission port.
	RelayNetworks []netip.Prefix
	// Aliases and Users say who exists in LocalDomains: an alias, else a
	// user (as the runner's expansion looks them up). Nil Aliases: only
	// the users (and postmaster); nil Users: every name is taken. Users
	// also checks AUTH passwords.
	Aliases *aliases.DB
	Users   *auth.Directory

	// Submission: this is port 587 (or 465): relaying needs AUTH, which
	// is offered (PLAIN and LOGIN) after STARTTLS or to a loopback client.
	// Without it (port 25) AUTH is not offered.
	Submission bool
	// TLS offers STARTTLS; nil: no TLS. ImplicitTLS (ServeConn only):
	// the connection starts with the TLS handshake (465).
	TLS         *tls.Config
	ImplicitTLS bool

	// LookupName returns the verified reverse DNS name of ip, "" when it
	// has none; nil: DNS (PTR, then forward-confirmed) within
	// DefaultLookupTimeout.
	LookupName func(ctx context.Context, ip string) string

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
	smtp *smtp.Server
	b    *Backend

	mu       sync.Mutex
	conns    map[*wireConn]struct{}
	perIP    map[string]int
	draining bool
}

// NewServer checks opts and builds a server; Serve starts it.
func NewServer(opts Options) (*Server, error) {
	b, err := NewBackend(opts)
	if err != nil {
		return nil, err
	}
	o := b.options()
	s := smtp.NewServer(b)
	s.Domain = o.Hostname
	s.MaxMessageBytes = o.MaxMessageBytes
	s.MaxRecipients = o.MaxRecipients
	s.WriteTimeout = o.Timeout
	// No s.ReadTimeout: go-smtp would set one deadline per command line,
	// which would also bound the whole DATA; wireConn sets an idle
	// deadline before every read instead.
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true
	s.TLSConfig = o.TLS
	// Whether AUTH is offered is decided per session (AuthMechanisms):
	// go-smtp's own rule (TLS only) would not let a loopback client in.
	s.AllowInsecureAuth = true
	s.ErrorLog = errorLog{}
	return &Server{smtp: s, b: b, conns: map[*wireConn]struct{}{}, perIP: map[string]int{}}, nil
}

// Serve accepts connections on l until Close or Shutdown.
func (s *Server) Serve(l net.Listener) error {
	return s.smtp.Serve(&wireListener{Listener: l, s: s})
}

// ServeTLS is Serve for a listener whose clients start with TLS (465).
func (s *Server) ServeTLS(l net.Listener) error {
	if s.b.options().TLS == nil {
		return errors.New("smtpserver: implicit TLS without a certificate")
	}
	return s.smtp.Serve(&wireListener{Listener: l, s: s, tls: true})
}

// Reload takes the policy of opts (LocalDomains, RelayNetworks, Aliases,
// Users, MaxConnsPerClient, MaxErrors) for the commands to come, in every
// session; the rest of opts needs a new server (a restart).
func (s *Server) Reload(opts Options) {
	s.b.reload(opts)
}

// Shutdown stops accepting, answers 421 to the sessions waiting for a
// command, lets a message in DATA finish (and then says 421), and waits for
// the sessions to end or for ctx; then it drops those left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for c := range s.conns {
		c.drain()
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if ctx.Err() != nil {
		s.smtp.Close()
	}
	return err
}

// Close stops accepting and drops every session at once.
func (s *Server) Close() error { return s.smtp.Close() }

// admit counts a new connection from ip, or refuses it over the limit.
func (s *Server) admit(c *wireConn, ip string) bool {
	o := s.b.options()
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.MaxConnsPerClient > 0 && s.perIP[ip] >= o.MaxConnsPerClient && !inNetworks(ip, o.RelayNetworks) {
		return false
	}
	s.perIP[ip]++
	s.conns[c] = struct{}{}
	if s.draining {
		c.drain()
	}
	return true
}

// gone is the end of a connection admit let in.
func (s *Server) gone(c *wireConn, ip string) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.mu.Unlock()
}

// wireListener hands out its connections wrapped in wireConn (and TLS
// over it on an implicit TLS port), turning away those over a client's
// limit with 421.
type wireListener struct {
	net.Listener
	s   *Server
	tls bool
}

func (l *wireListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		o := l.s.b.options()
		wc := l.s.newConn(c, o)
		ip := remoteClient(c.RemoteAddr()).addr
		if !l.s.admit(wc, ip) {
			maillog.Reject("CONNECT", "", ip, line(replyTooManyConns), "SMTP", "", "", "")
			go func() {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, line(replyTooManyConns)+"\r\n")
				c.Close()
			}()
			continue
		}
		wc.onClose = func(wc *wireConn) {
			l.s.gone(wc, ip)
			wc.logEnd(ip)
		}
		maillog.SMTPConnect(ip, localPort(c.LocalAddr()))
		if l.tls {
			wc.plain.Store(false)
			return tls.Server(wc, o.TLS), nil
		}
		return wc, nil
	}
}

// newConn wraps c with the timeouts and limits of o.
func (s *Server) newConn(c net.Conn, o *Options) *wireConn {
	wc := newWireConn(c, o.Timeout)
	wc.dataIdle = o.DataTimeout
	wc.maxErrors = o.MaxErrors
	return wc
}

// logEnd writes the session's last log line.
func (c *wireConn) logEnd(ip string) {
	c.mu.Lock()
	result, timedOut := c.result, c.timedOut
	c.mu.Unlock()
	if result == "" && timedOut {
		result = "timeout"
	}
	if result == "" {
		result = "closed"
	}
	maillog.SMTPDisconnect(ip, result, int(c.msgs.Load()), int(c.errors.Load()))
}

func localPort(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return strconv.Itoa(ta.Port)
	}
	return ""
}

// errorLog sends go-smtp's complaints (a failed TLS handshake, a panic)
// to the mail log.
type errorLog struct{}

func (errorLog) Printf(format string, v ...any) {
	maillog.ServerError("smtp", "", "", fmt.Sprintf(format, v...))
}
func (errorLog) Println(v ...any) { maillog.ServerError("smtp", "", "", fmt.Sprint(v...)) }

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
	o := s.b.options()
	wc := s.newConn(c, o)
	var first net.Conn = wc
	if _, ok := c.(*pipeConn); !ok && o.Local == nil {
		ip := remoteClient(c.RemoteAddr()).addr
		maillog.SMTPConnect(ip, localPort(c.LocalAddr()))
		wc.onClose = func(wc *wireConn) { wc.logEnd(ip) }
	}
	if o.ImplicitTLS {
		if o.TLS == nil {
			return errors.New("smtpserver: implicit TLS without a certificate")
		}
		wc.plain.Store(false)
		first = tls.Server(wc, o.TLS)
	}
	l := &oneConnListener{conn: wc, ready: make(chan net.Conn, 1), closed: make(chan struct{})}
	l.ready <- first
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
