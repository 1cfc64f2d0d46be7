package imapstore

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"yubin/internal/auth"
)

// users is a one-user directory for tests: alice, password "secret".
type users struct{ home string }

func (u users) Lookup(name string) (*auth.User, error) {
	if name != "alice" {
		return nil, auth.ErrNoUser
	}
	return &auth.User{Name: "alice", UID: os.Getuid(), GID: os.Getgid(), Home: u.home, Virtual: true}, nil
}
func (u users) Virtual() bool { return true }
func (u users) Authenticate(user *auth.User, pw string) error {
	if user == nil || pw != "secret" {
		return auth.ErrBadPassword
	}
	return nil
}

// remoteConn makes a loopback connection look like one from elsewhere.
type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
}

// serveOne serves one session on a loopback socket and returns the client
// end, reading lines.
func serveOne(t *testing.T, opts Options, wrap func(net.Conn) net.Conn) (net.Conn, *bufio.Reader) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		// The listener closes once it has accepted: closed before, it
		// would reset the connection waiting in its backlog.
		c, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		Serve(context.Background(), opts, wrap(c))
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	// Before the temp dirs go: the session writes its UID lists at the end.
	t.Cleanup(func() { c.Close(); <-served })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// exchange sends a tagged command and returns every line up to the tagged
// reply.
func exchange(t *testing.T, c net.Conn, r *bufio.Reader, tag, cmd string) string {
	t.Helper()
	if _, err := c.Write([]byte(tag + " " + cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			t.Fatalf("%s: %v after %q", cmd, err, b.String())
		}
		if strings.HasPrefix(line, tag+" ") {
			return b.String()
		}
	}
}

func testOptions(t *testing.T) Options {
	home := t.TempDir()
	return Options{
		Hostname: "mx.test.example", MailDir: "~/Maildir", Users: users{home},
		SwitchUser: func(*auth.User) error { return nil }, FailureDelay: -1,
	}
}

// Without TLS from a non-loopback address, passwords are refused and the
// capabilities say LOGINDISABLED (RFC 9051 §6.2.3), unless plaintext_auth.
func TestLoginDisabledWithoutTLSFromRemote(t *testing.T) {
	opts := testOptions(t)
	c, r := serveOne(t, opts, func(c net.Conn) net.Conn { return remoteConn{c} })
	r.ReadString('\n') // greeting
	if caps := exchange(t, c, r, "a1", "CAPABILITY"); !strings.Contains(caps, "LOGINDISABLED") || strings.Contains(caps, "AUTH=PLAIN") {
		t.Errorf("CAPABILITY = %q", caps)
	}
	if got := exchange(t, c, r, "a2", "LOGIN alice secret"); !strings.Contains(got, "a2 NO [PRIVACYREQUIRED]") {
		t.Errorf("LOGIN = %q", got)
	}

	opts.PlaintextAuth = true
	c, r = serveOne(t, opts, func(c net.Conn) net.Conn { return remoteConn{c} })
	r.ReadString('\n')
	if got := exchange(t, c, r, "a1", "LOGIN alice secret"); !strings.Contains(got, "a1 OK") {
		t.Errorf("LOGIN with plaintext_auth = %q", got)
	}
}

// Bad input gets BAD or NO and the session goes on; the first login makes
// the Maildir and the special-use folders.
func TestBadCommandsThenSession(t *testing.T) {
	opts := testOptions(t)
	c, r := serveOne(t, opts, func(c net.Conn) net.Conn { return c })
	r.ReadString('\n')
	for _, tc := range []struct{ cmd, want string }{
		{"SELECT INBOX", "b1 BAD"},
		{"LOGIN alice wrong", "b2 NO [AUTHENTICATIONFAILED]"},
		{"LOGIN alice secret", "b3 OK"},
		{"FETCH 1 FLAGS", "b4 BAD"},
		{"SELECT ../../etc", "b5 NO"},
		{"CREATE a/b", "b6 NO"},
		{"SELECT INBOX", "b7 OK [READ-WRITE]"},
		// go-imap beta.8 answers a malformed set NO [SERVERBUG], not BAD
		// (its PR #765); a number beyond the last is BAD (RFC 9051 §9).
		{"FETCH x FLAGS", "b8 NO"},
		{"UID FETCH 1:* (FLAGS)", "b9 OK"},
		{"STORE 5 +FLAGS (\\Seen)", "b10 BAD"},
		{"NOOP", "b11 OK"},
	} {
		tag := strings.Fields(tc.want)[0]
		if got := exchange(t, c, r, tag, tc.cmd); !strings.Contains(got, tc.want) {
			t.Errorf("%s = %q, want %q", tc.cmd, got, tc.want)
		}
	}
	exchange(t, c, r, "c1", "CREATE INBOX.sub")
	exchange(t, c, r, "c2", "CREATE Work.Projects")
	list := exchange(t, c, r, "c3", `LIST "" *`)
	if strings.Count(list, `"." INBOX`) != 1 || !strings.Contains(list, `(\HasChildren) "." INBOX`) ||
		!strings.Contains(list, `(\Noselect \HasChildren) "." "Work"`) || !strings.Contains(list, `"INBOX.sub"`) {
		t.Errorf("LIST = %q", list)
	}
	for _, name := range []string{".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"} {
		if _, err := os.Stat(filepath.Join(opts.Users.(users).home, "Maildir", name, "cur")); err != nil {
			t.Errorf("special-use folder: %v", err)
		}
	}
}

// The fifth failed login ends the session.
func TestTooManyFailures(t *testing.T) {
	c, r := serveOne(t, testOptions(t), func(c net.Conn) net.Conn { return c })
	r.ReadString('\n')
	for i := range 4 {
		if got := exchange(t, c, r, "f", "LOGIN alice wrong"); !strings.Contains(got, "f NO") {
			t.Fatalf("failure %d: %q", i+1, got)
		}
	}
	c.Write([]byte("f LOGIN alice wrong\r\n"))
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "* BYE") {
		t.Errorf("after the fifth failure: %q", rest)
	}
}

// IDLE lasts IdleTimeout, not imapserver's 35 minutes, and ends with BYE.
func TestIdleEndsWithByeAfterIdleTimeout(t *testing.T) {
	opts := testOptions(t)
	opts.IdleTick, opts.IdleTimeout = 50*time.Millisecond, 500*time.Millisecond
	c, r := serveOne(t, opts, func(c net.Conn) net.Conn { return c })
	r.ReadString('\n')
	exchange(t, c, r, "a1", "LOGIN alice secret")
	exchange(t, c, r, "a2", "SELECT INBOX")
	c.Write([]byte("a3 IDLE\r\n"))
	if cont, _ := r.ReadString('\n'); !strings.HasPrefix(cont, "+ ") {
		t.Fatalf("IDLE = %q", cont)
	}
	rest, err := io.ReadAll(r) // the client's deadline is 10 s
	if err != nil || !strings.HasPrefix(string(rest), "* BYE ") {
		t.Errorf("after IdleTimeout: %q, %v; want BYE and the end", rest, err)
	}
}
