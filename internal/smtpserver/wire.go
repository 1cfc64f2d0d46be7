package smtpserver

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// wireConn sits between a client's connection and go-smtp. go-smtp writes
// each reply line with one Write (textproto flushes after every line), so
// wireConn sees whole lines; it
//   - replaces the few fixed go-smtp replies listed in fixedReplies,
//   - records whether the client's last greeting was HELO or EHLO, from
//     go-smtp's answer to it ("250 2.0.0 Hello x" or "250-Hello x"),
//   - sets an idle deadline before every read.
//
// After STARTTLS (issue 5) the bytes are ciphertext: it stops looking.
type wireConn struct {
	net.Conn
	idle     time.Duration
	plain    atomic.Bool  // still cleartext: replies may be looked at
	greeting atomic.Int32 // greetNone, greetHELO or greetEHLO

	closeOnce sync.Once
	closeErr  error
	done      chan struct{} // closed by Close
}

const (
	greetNone = iota
	greetHELO
	greetEHLO
)

func newWireConn(c net.Conn, idle time.Duration) *wireConn {
	w := &wireConn{Conn: c, idle: idle, done: make(chan struct{})}
	w.plain.Store(true)
	return w
}

// ehlo reports whether the client greeted with EHLO (or not yet at all).
func (c *wireConn) ehlo() bool { return c.greeting.Load() != greetHELO }

func (c *wireConn) Read(p []byte) (int, error) {
	if c.idle > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *wireConn) Write(p []byte) (int, error) {
	if !c.plain.Load() {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(c.look(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// look returns p with the lines in fixedReplies replaced, noting greetings
// and STARTTLS on the way. A line that is not whole within p passes as is.
func (c *wireConn) look(p []byte) []byte {
	var out []byte // nil while nothing is replaced
	rest := p
	for {
		i := bytes.Index(rest, crlf)
		if i < 0 {
			break
		}
		line := rest[:i]
		switch {
		case bytes.HasPrefix(line, []byte("250-Hello ")):
			c.greeting.Store(greetEHLO)
		case bytes.HasPrefix(line, []byte("250 2.0.0 Hello ")):
			c.greeting.Store(greetHELO)
		case bytes.HasPrefix(line, []byte("220 2.0.0 Ready to start TLS")):
			c.plain.Store(false)
		}
		if fixed, ok := fixedReplies[string(line)]; ok {
			if out == nil {
				out = append(make([]byte, 0, len(p)+64), p[:len(p)-len(rest)]...)
			}
			out = append(out, fixed...)
			out = append(out, crlf...)
		} else if out != nil {
			out = append(out, rest[:i+2]...)
		}
		rest = rest[i+2:]
	}
	if out == nil {
		return p
	}
	return append(out, rest...)
}

var crlf = []byte("\r\n")

// Close closes the connection once; later calls return net.ErrClosed.
func (c *wireConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		err = c.closeErr
		close(c.done)
	})
	return err
}

// wireListener hands out its connections wrapped in wireConn.
type wireListener struct {
	net.Listener
	timeout time.Duration
}

func (l *wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newWireConn(c, l.timeout), nil
}

// oneConnListener is how go-smtp, which only serves listeners, serves one
// connection: Accept returns it once, then blocks until it or the listener
// is closed, and then fails with net.ErrClosed, which ends Serve.
type oneConnListener struct {
	conn      *wireConn
	ready     chan net.Conn // holds conn until the first Accept
	closeOnce sync.Once
	closed    chan struct{}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	default:
	}
	select {
	case <-l.conn.done:
	case <-l.closed:
	}
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// pipeConn is a net.Conn over a reader and a writer (stdin and stdout).
// Writes go straight to w, so a reply is out when Write returns. Close
// does not close r or w, which belong to the caller; it makes every later
// Read and Write fail, so nothing is read or written after the session.
// Deadlines are not supported and silently ignored: a local user typing
// SMTP at a terminal has no timeout.
type pipeConn struct {
	r      io.Reader
	w      io.Writer
	closed atomic.Bool
}

func (c *pipeConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.r.Read(p)
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *pipeConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.w.Write(p)
}

func (c *pipeConn) Close() error {
	c.closed.Store(true)
	return nil
}

func (c *pipeConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }

// pipeAddr is both ends of a pipeConn.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "stdio" }
