package imapstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"yubin/internal/auth"
	"yubin/internal/daemon"
	"yubin/internal/maillog"
)

// Users answers who may log in; *auth.Directory is one.
type Users interface {
	auth.Finder
	// Authenticate checks a password; u is nil for an unknown user.
	Authenticate(u *auth.User, password string) error
}

// Options are what a session needs from yubin.conf and the caller.
type Options struct {
	Hostname string // the domain of a bare login name
	MailDir  string // mail_dir: %u, %d, a leading ~
	Users    Users

	TLS           *tls.Config // STARTTLS (and ImplicitTLS) when not nil
	ImplicitTLS   bool        // the connection starts with a TLS handshake (port 993)
	PlaintextAuth bool        // passwords without TLS from non-loopback clients

	// SwitchUser makes the process the logged-in user; nil means
	// daemon.BecomeUser, tests pass their own.
	SwitchUser func(u *auth.User) error

	FailureDelay time.Duration // the first failed login's delay; 0: 1 s, <0: none
	IdleTick     time.Duration // how often IDLE rescans the folder; 0: 2 s
	IdleTimeout  time.Duration // how long one IDLE may last; 0: 2 h
}

// Caps are the capabilities served beyond what imapserver adds itself.
var Caps = imap.CapSet{
	imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {},
	imap.CapNamespace: {}, imap.CapUIDPlus: {}, imap.CapESearch: {}, imap.CapSearchRes: {},
	imap.CapListExtended: {}, imap.CapListStatus: {}, imap.CapMove: {}, imap.CapStatusSize: {},
	imap.CapBinary: {}, imap.CapChildren: {}, imap.CapSpecialUse: {},
}

// Serve runs one session on conn until the client logs out or goes away,
// or ctx is done, and closes conn.
func Serve(ctx context.Context, opts Options, conn net.Conn) error {
	if opts.FailureDelay == 0 {
		opts.FailureDelay = time.Second
	}
	if opts.IdleTick == 0 {
		opts.IdleTick = 2 * time.Second
	}
	if opts.IdleTimeout == 0 {
		// RFC 2177 asks clients to renew IDLE every 29 minutes, and
		// imapserver logs a session out after 35 idle minutes between
		// commands; some clients renew later. TCP keepalive, which Go
		// turns on for the connections it accepts, finds peers gone.
		opts.IdleTimeout = 2 * time.Hour
	}
	if opts.SwitchUser == nil {
		opts.SwitchUser = daemon.BecomeUser
	}
	client := clientOf(conn)
	local := client == "stdio" || isLoopback(conn.RemoteAddr())
	held := &heldConn{Conn: conn}
	conn = held
	if opts.ImplicitTLS {
		tc := tls.Server(conn, opts.TLS)
		tc.SetDeadline(time.Now().Add(time.Minute))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil // a client that cannot speak TLS is no server error
		}
		tc.SetDeadline(time.Time{})
		conn = tc
	}
	done := make(chan struct{})
	var once sync.Once
	var sess *Session
	srvOpts := &imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess = &Session{opts: &opts, client: client, conn: c, out: held, onClose: func() { once.Do(func() { close(done) }) }}
			return sess, nil, nil
		},
		Caps:         Caps,
		Logger:       logger{client},
		InsecureAuth: local || opts.PlaintextAuth,
	}
	if !opts.ImplicitTLS {
		srvOpts.TLSConfig = opts.TLS
	}
	srv := imapserver.New(srvOpts)
	l := &oneConn{conn: conn, done: done}
	stop := context.AfterFunc(ctx, func() { conn.Close(); once.Do(func() { close(done) }) })
	defer stop()
	err := srv.Serve(l)
	<-done
	srv.Close()
	if sess != nil && sess.login != "" {
		maillog.Logout("imap", sess.login, client, "quit", 0, 0, 0, 0)
	}
	return err
}

func clientOf(conn net.Conn) string {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	if conn.RemoteAddr() == nil || conn.RemoteAddr().Network() != "tcp" {
		return "stdio"
	}
	return conn.RemoteAddr().String()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return !ok || ta.IP.IsLoopback()
}

// logger sends imapserver's complaints to the mail log.
type logger struct{ client string }

func (l logger) Printf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	maillog.ServerError("imap", l.client, "", msg)
}

// oneConn is a listener that hands out one connection, then waits for the
// session's end.
type oneConn struct {
	conn  net.Conn
	done  chan struct{}
	taken bool
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.taken {
		l.taken = true
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }
