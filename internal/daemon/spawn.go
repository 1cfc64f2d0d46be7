package daemon

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"yubin/internal/maillog"
)

// MaxSessions is how many sessions Spawn runs at once by default.
const MaxSessions = 200

// Spawn accepts connections on l and runs each session in a child process
// made by newCmd, with the connection as its standard input and output (as
// inetd does with "pop3d -i"): after login a session becomes its user for
// good (BecomeUser), so no two sessions can share a process. Over max
// sessions, a client gets the line busy (the protocol's "try later" reply,
// with CRLF) and is disconnected. One child is kept started ahead of the
// next connection (a spare: spare.go). proto names the service in the log.
// Spawn returns nil when l is closed; it leaves running children alone.
func Spawn(l net.Listener, newCmd func() *exec.Cmd, max int, proto, busy string) error {
	if max <= 0 {
		max = MaxSessions
	}
	var mu sync.Mutex
	running := 0
	// One spare (spare.go) waits for the next connection; the next is
	// started as soon as it is taken.
	spares := make(chan *spare, 1)
	refill := func() {
		go func() {
			s, err := startSpare(newCmd)
			if err != nil {
				maillog.ServerError(proto, "", "", "starting a spare session: "+err.Error())
				return
			}
			spares <- s
		}()
	}
	refill()
	defer func() {
		select {
		case s := <-spares:
			s.discard()
		default:
		}
	}()
	for {
		conn, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			// EMFILE and the like: wait for sessions to end.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		client := conn.RemoteAddr().String()
		mu.Lock()
		full := running >= max
		if !full {
			running++
		}
		mu.Unlock()
		if full {
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(conn, busy)
			conn.Close()
			continue
		}
		var s *spare
		select {
		case s = <-spares:
			refill()
		default:
		}
		cmd, err := startChild(conn, newCmd, s)
		if err != nil {
			maillog.ServerError(proto, client, "", "starting a session: "+err.Error())
			mu.Lock()
			running--
			mu.Unlock()
			continue
		}
		go func() {
			cmd.Wait()
			mu.Lock()
			running--
			mu.Unlock()
		}()
	}
}

// startChild gives conn to the spare s, or when there is none or it
// failed, starts newCmd's process on it; it closes the parent's copy.
func startChild(conn net.Conn, newCmd func() *exec.Cmd, s *spare) (*exec.Cmd, error) {
	defer conn.Close()
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	var f *os.File
	if fc, ok := sc.(interface{ File() (*os.File, error) }); ok {
		var err error
		if f, err = fc.File(); err != nil {
			return nil, err
		}
	} else {
		return nil, errors.New("connection has no file")
	}
	defer f.Close()
	if s != nil {
		if err := s.hand(f); err == nil {
			return s.cmd, nil
		}
		s.discard()
	}
	cmd := newCmd()
	cmd.Stdin, cmd.Stdout = f, f
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}
