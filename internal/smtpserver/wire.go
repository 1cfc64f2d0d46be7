package smtpserver

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
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
//   - counts error replies, and after maxErrors adds 421 and closes,
//   - sets an idle deadline before every read: timeout between commands,
//     dataTimeout while a message is coming in,
//   - closes the connection after a 421 reply,
//   - on shutdown (drain), makes the wait for the next command end at
//     once, which go-smtp answers with 421, but lets a DATA finish.
//
// After STARTTLS the bytes are ciphertext: it stops looking at replies,
// and the session counts its own errors (countError).
type wireConn struct {
	net.Conn
	idle, dataIdle time.Duration
	maxErrors      int
	plain          atomic.Bool  // still cleartext: replies may be looked at
	greeting       atomic.Int32 // greetNone, greetHELO or greetEHLO
	closeAfter     atomic.Bool  // close once the next reply is written
	errors         atomic.Int32 // error replies so far
	msgs           atomic.Int32 // messages queued

	mu       sync.Mutex
	reading  bool // blocked waiting for the client
	inData   bool // a message is being received
	draining bool // the server is shutting down
	timedOut bool // a read timed out (not because of draining)
	result   string
	name     string // the client's verified reverse name, once looked up
	named    bool

	onClose   func(*wireConn) // the listener's bookkeeping, or nil
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
	w := &wireConn{Conn: c, idle: idle, dataIdle: idle, done: make(chan struct{})}
	w.plain.Store(true)
	return w
}

// wireOf finds the wireConn under c, which is one or a TLS connection over
// one; nil for anything else.
func wireOf(c net.Conn) *wireConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	wc, _ := c.(*wireConn)
	return wc
}

// ehlo reports whether the client greeted with EHLO (or not yet at all).
func (c *wireConn) ehlo() bool { return c.greeting.Load() != greetHELO }

// pastDeadline ends a read at once.
var pastDeadline = time.Unix(1, 0)

func (c *wireConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	idle := c.idle
	if c.inData {
		idle = c.dataIdle
	}
	var err error
	switch {
	case c.draining && !c.inData:
		err = c.Conn.SetReadDeadline(pastDeadline)
	case idle > 0:
		err = c.Conn.SetReadDeadline(time.Now().Add(idle))
	}
	c.reading = true
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.reading = false
	if ne, ok := err.(net.Error); ok && ne.Timeout() && !c.draining {
		c.timedOut = true
	}
	c.mu.Unlock()
	return n, err
}

// drain is the server shutting down: a session waiting for a command gets
// 421 now, one in DATA after its message.
func (c *wireConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.reading && !c.inData {
		c.Conn.SetReadDeadline(pastDeadline)
	}
}

func (c *wireConn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// setData switches between the command and the data timeout.
func (c *wireConn) setData(on bool) {
	c.mu.Lock()
	c.inData = on
	c.mu.Unlock()
}

// setResult notes why the session ends, for the log.
func (c *wireConn) setResult(r string) {
	c.mu.Lock()
	if c.result == "" {
		c.result = r
	}
	c.mu.Unlock()
}

// countError counts an error reply that look cannot see (after STARTTLS)
// and reports whether the session has had too many.
func (c *wireConn) countError() bool {
	n := c.errors.Add(1)
	return c.maxErrors > 0 && int(n) >= c.maxErrors
}

func (c *wireConn) Write(p []byte) (int, error) {
	out := p
	if c.plain.Load() {
		out = c.look(p)
	}
	_, err := c.Conn.Write(out)
	if c.closeAfter.Load() {
		c.Close()
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// look returns p with the lines in fixedReplies replaced, noting greetings,
// STARTTLS, error replies and 421 on the way. A line that is not whole
// within p passes as is.
func (c *wireConn) look(p []byte) []byte {
	var out []byte // nil while nothing is replaced
	rest := p
	for {
		i := bytes.Index(rest, crlf)
		if i < 0 {
			break
		}
		ln := rest[:i]
		switch {
		case bytes.HasPrefix(ln, []byte("250-Hello ")):
			c.greeting.Store(greetEHLO)
		case bytes.HasPrefix(ln, []byte("250 2.0.0 Hello ")):
			c.greeting.Store(greetHELO)
		case bytes.HasPrefix(ln, []byte("220 2.0.0 Ready to start TLS")):
			c.plain.Store(false)
		}
		fixed, ok := fixedReplies[string(ln)]
		if !ok && bytes.HasPrefix(ln, []byte(idleTimeoutReply)) {
			// go-smtp's answer to a read deadline: ours, or the shutdown.
			fixed, ok = line(replyTimeout), true
			if c.isDraining() {
				fixed = line(replyShutdown)
				c.setResult("shutdown")
			} else {
				c.setResult("timeout")
			}
		}
		var extra string
		final := fixed
		if !ok {
			final = string(ln)
		}
		switch {
		case strings.HasPrefix(final, "421"):
			c.closeAfter.Store(true)
		case len(final) > 3 && final[3] == ' ' && (final[0] == '4' || final[0] == '5'):
			if c.countError() {
				extra = line(replyTooManyErrors)
				c.setResult("too-many-errors")
				c.closeAfter.Store(true)
			}
		}
		if (ok || extra != "") && out == nil {
			out = append(make([]byte, 0, len(p)+64), p[:len(p)-len(rest)]...)
		}
		switch {
		case ok:
			out = append(out, fixed...)
			out = append(out, crlf...)
		case out != nil:
			out = append(out, rest[:i+2]...)
		}
		if extra != "" {
			out = append(out, extra...)
			out = append(out, crlf...)
		}
		rest = rest[i+2:]
	}
	if out == nil {
		return p
	}
	return append(out, rest...)
}

// idleTimeoutReply begins go-smtp's reply to a read that timed out.
const idleTimeoutReply = "421 4.4.2 Idle timeout"

var crlf = []byte("\r\n")

// Close closes the connection once; later calls return net.ErrClosed.
func (c *wireConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		err = c.closeErr
		close(c.done)
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return err
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
