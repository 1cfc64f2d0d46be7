package imapstore

import (
	"net"
	"sync"
	"time"
)

// heldConn is the connection under imapserver (and under TLS, so that
// imapserver still sees its *tls.Conn). imapserver flushes after every
// response line: a FETCH 1:* of 100,000 messages would be 100,000 write(2)
// calls, and a FETCH of one message three (the literal's start, its end,
// the tagged reply). What it writes is held here and sent when the server
// next reads from the client (it then waits for the client, which is
// owed every answer), when the batch would pass heldSize, when IDLE sends
// an update (Flush) and at Close. imapserver sets a write deadline before
// each response and clears it after: 200,000 updates of the poller for a
// FETCH 1:* of 100,000 messages; the deadline is only noted, and applied
// to the writes that happen.
type heldConn struct {
	net.Conn
	mu       sync.Mutex // IDLE's goroutine writes while the session reads
	buf      []byte
	deadline time.Time // the write deadline imapserver set, zero between its responses
}

const (
	heldSize = 64 << 10
	// heldWriteTimeout bounds a write made outside imapserver's own
	// deadlines (its respWriteTimeout is 30 s too).
	heldWriteTimeout = 30 * time.Second
)

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf)+len(p) > heldSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > heldSize {
			return c.send(p) // a big literal: no copy
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *heldConn) Read(p []byte) (int, error) {
	if err := c.Flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *heldConn) Close() error {
	c.mu.Lock()
	// TLS's close_notify leaves an expired deadline behind it, meant for
	// its own later writes: the held replies (BYE, the tagged OK) go first.
	c.deadline = time.Time{}
	c.flushLocked()
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *heldConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

// Flush sends what is held.
func (c *heldConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *heldConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.send(c.buf)
	c.buf = c.buf[:0]
	return err
}

// send writes p by the deadline imapserver set, or within
// heldWriteTimeout when it has set none; c.mu is held.
func (c *heldConn) send(p []byte) (int, error) {
	d := c.deadline
	if d.IsZero() {
		d = time.Now().Add(heldWriteTimeout)
	}
	if err := c.Conn.SetWriteDeadline(d); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
