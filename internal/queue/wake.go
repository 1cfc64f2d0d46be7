package queue

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Wake tells a running runner that message id is waiting, so it is attempted
// at once rather than at the next queue scan. With no runner listening it
// does nothing: the message waits in the queue either way.
func (q *Queue) Wake(id string) {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: q.path(wakeName), Net: "unixgram"})
	if err != nil {
		return
	}
	c.Write([]byte(id))
	c.Close()
}

// WakeListener receives the wake-ups that Wake sends.
type WakeListener struct {
	c *net.UnixConn
}

// ListenWake binds the queue's wake socket, group-writable so that setgid
// sendmail can reach it. One runner listens per queue.
func (q *Queue) ListenWake() (*WakeListener, error) {
	name := q.path(wakeName)
	// A socket left by a runner that died would refuse the bind.
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("queue: wake socket: %w", err)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("queue: wake socket: %w", err)
	}
	if err := os.Chmod(name, 0o660); err != nil {
		c.Close()
		return nil, fmt.Errorf("queue: wake socket: %w", err)
	}
	return &WakeListener{c: c}, nil
}

// Next blocks until a wake-up arrives and returns the message ID it names
// ("" when the sender named none or something that is not an ID).
func (l *WakeListener) Next() (string, error) {
	var buf [64]byte
	n, err := l.c.Read(buf[:])
	if err != nil {
		return "", err
	}
	if id := string(buf[:n]); ValidID(id) {
		return id, nil
	}
	return "", nil
}

// Close stops listening and removes the socket.
func (l *WakeListener) Close() error {
	name := l.c.LocalAddr().String()
	err := l.c.Close()
	os.Remove(name)
	return err
}
