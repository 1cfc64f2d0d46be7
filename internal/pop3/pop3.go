// Package pop3 is yubin's POP3 server: one session on one connection, over
// the logged-in user's Maildir.
//
// # Protocol
//
// RFC 1939 (POP3), with RFC 2449 (CAPA, RESP-CODES, AUTH-RESP-CODE,
// PIPELINING), RFC 2595 (STLS), RFC 5034 (AUTH, PLAIN only, RFC 4616). The
// greeting carries an APOP timestamp "<pid.nanoseconds@hostname>" only when
// APOP can work: users come from users_file and some of them have a {PLAIN}
// secret. Every line is answered, a bad one with "-ERR", and the session goes
// on; lines are limited to 1024 octets (AUTH responses 8192), and 10 minutes
// without a command (RFC 1939 §3) end the session.
//
// Passwords (USER/PASS, AUTH PLAIN) are refused with "-ERR [AUTH]" on a
// connection without TLS from a non-loopback address unless Options say
// otherwise; a connection that is not TCP (a pipe from inetd-like local
// tools) counts as local. A failed login is answered alike whether or not
// the user exists, after a delay that grows with each failure (1 s, 2 s, ...
// 5 s), and the session ends after 5 failures. Logins are logged through
// maillog, never with the password.
//
// Login names are "user" or "user@domain", folded to lower case and looked
// up as deliver(8) looks up recipients, so that pop3d opens the Maildir that
// deliver writes (mail_dir through mailbox.ExpandMailDir). Names with "/",
// "..", NUL, control characters or a leading "-" or "." are no user. System
// user root cannot log in.
//
// # Privileges
//
// After a successful login the process becomes the user for good
// (setgroups, setgid, setuid: daemon.BecomeUser), before it touches the Maildir:
// one user per process, which is why pop3d runs every session in a process
// of its own. A login that then fails (the maildrop is locked, the Maildir
// cannot be opened) ends the session.
//
// # Maildir
//
// The maildrop is locked with flock(2) on Maildir/yubin-pop3.lock for the
// whole session; a second session gets "-ERR [IN-USE]" (RFC 1939 §8, RFC
// 2449 §8.1.1). When the session starts, every message of new/ is moved to
// cur/ (Maildir's "no longer new", as Dovecot does on opening a mailbox), and
// the session works on the messages of cur/ at that instant, in delivery
// order; later deliveries wait for the next session. UIDL is the Maildir
// unique name (the file name before ":"), or a hash of it when it is longer
// than RFC 1939's 70 characters or has other characters: the same in every
// session. Sizes (STAT, LIST) count octets as RETR sends them, with CRLF
// line ends: read from Dovecot's ",W=SIZE" in the name when there, else
// counted once and kept in Maildir/yubin-pop3.sizes (a cache, "name size"
// lines) for later sessions. RETR sends every line ending in CRLF and
// dot-stuffed whatever the file holds. Retrieved messages get the Maildir
// flag S and DELE'd ones are removed on QUIT only (RFC 1939 §6, UPDATE;
// with a Maildir++ maildirsize, the removal is appended to it); a dropped
// connection changes nothing more.
package pop3

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"yubin/internal/auth"
	"yubin/internal/daemon"
)

// Users answers who may log in; *auth.Directory is one.
type Users interface {
	Lookup(name string) (*auth.User, error)
	Virtual() bool
	// Authenticate checks a password; u is nil for an unknown user.
	Authenticate(u *auth.User, password string) error
	HasPlainSecrets() bool
}

// Options are what a session needs from yubin.conf and the caller.
type Options struct {
	Hostname string // greeting, APOP timestamp, domain of a bare login name
	MailDir  string // mail_dir: %u, %d, a leading ~
	Users    Users

	TLS           *tls.Config // STLS (and ImplicitTLS) when not nil
	ImplicitTLS   bool        // the connection starts with a TLS handshake (port 995)
	PlaintextAuth bool        // passwords without TLS from non-loopback clients

	// SwitchUser makes the process the logged-in user; nil means
	// daemon.BecomeUser, tests pass their own.
	SwitchUser func(u *auth.User) error

	IdleTimeout  time.Duration // 0: 10 minutes
	FailureDelay time.Duration // the first failed login's delay; 0: 1 s, <0: none
	MaxFailures  int           // failed logins before the session ends; 0: 5
}

// Serve runs one session on conn until the client quits or goes away, or
// ctx is done, and closes conn. The error is what broke the connection;
// nil after QUIT or the client's hang-up.
func Serve(ctx context.Context, opts Options, conn net.Conn) error {
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 10 * time.Minute
	}
	if opts.FailureDelay == 0 {
		opts.FailureDelay = time.Second
	}
	if opts.MaxFailures == 0 {
		opts.MaxFailures = 5
	}
	if opts.SwitchUser == nil {
		opts.SwitchUser = daemon.BecomeUser
	}
	s := newSession(&opts, conn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	return s.serve()
}
