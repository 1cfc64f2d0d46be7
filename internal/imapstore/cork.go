package imapstore

import (
	"net"
	"time"
)

// corkConn is the connection under imapserver (and under TLS, so that
// imapserver still sees its *tls.Conn). imapserver flushes after every
// response line, which makes a FETCH 1:* of 100,000 messages 100,000
// write(2) calls; while a command that answers line by line runs, the
// session corks the connection and the lines go out in writes of up to
// corkSize bytes, the rest when the command ends (before its tagged
// reply, which imapserver writes after the session's method returns).
type corkConn struct {
	net.Conn
	buf  []byte
	held bool
}

const (
	corkSize = 64 << 10
	// corkWriteTimeout bounds the write at uncork, made between responses
	// where imapserver has cleared its own deadline (its respWriteTimeout
	// is 30 s).
	corkWriteTimeout = 30 * time.Second
)

func (c *corkConn) Write(p []byte) (int, error) {
	if !c.held {
		return c.Conn.Write(p)
	}
	if len(c.buf)+len(p) > corkSize {
		if err := c.flush(); err != nil {
			return 0, err
		}
		if len(p) > corkSize {
			return c.Conn.Write(p) // a big literal: no copy
		}
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *corkConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// corked runs fn with c corked, then sends what fn wrote.
func (c *corkConn) corked(fn func() error) error {
	c.held = true
	err := fn()
	c.held = false
	if len(c.buf) > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(corkWriteTimeout))
		if ferr := c.flush(); err == nil {
			err = ferr
		}
		c.Conn.SetWriteDeadline(time.Time{})
	}
	return err
}
