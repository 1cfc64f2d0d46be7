package daemon

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// StdioConn returns the connection a "-i" session serves: the socket on in
// when in is one (inetd, systemd Accept=yes), otherwise in and out joined as
// a pipe (a local tool driving the server), which counts as a local
// connection.
func StdioConn(in, out *os.File) (net.Conn, error) {
	if _, err := syscall.Getpeername(int(in.Fd())); err == nil {
		return net.FileConn(in)
	}
	// Non-blocking descriptors can be polled, so deadlines (the idle
	// timeout) work on pipes too.
	for _, f := range []*os.File{in, out} {
		if err := syscall.SetNonblock(int(f.Fd()), true); err != nil {
			return nil, err
		}
	}
	return &stdioConn{in: os.NewFile(in.Fd(), in.Name()), out: os.NewFile(out.Fd(), out.Name())}, nil
}

// IsSocket reports whether f is a connected socket.
func IsSocket(f *os.File) bool {
	_, err := syscall.Getpeername(int(f.Fd()))
	return err == nil
}

type stdioConn struct{ in, out *os.File }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "stdio" }

func (c *stdioConn) Read(b []byte) (int, error)  { return c.in.Read(b) }
func (c *stdioConn) Write(b []byte) (int, error) { return c.out.Write(b) }
func (c *stdioConn) Close() error                { return errors.Join(c.in.Close(), c.out.Close()) }
func (c *stdioConn) LocalAddr() net.Addr         { return stdioAddr{} }
func (c *stdioConn) RemoteAddr() net.Addr        { return stdioAddr{} }
func (c *stdioConn) SetDeadline(t time.Time) error {
	return errors.Join(c.in.SetReadDeadline(t), c.out.SetWriteDeadline(t))
}
func (c *stdioConn) SetReadDeadline(t time.Time) error  { return c.in.SetReadDeadline(t) }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return c.out.SetWriteDeadline(t) }
