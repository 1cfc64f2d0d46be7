package smtpserver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// serve runs s on a loopback port and returns the address and a channel
// that gets Serve's result.
func serve(t *testing.T, s *Server) (string, chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
	return l.Addr().String(), done
}

// Shutdown: 421 at once to a session waiting for a command; a message in
// DATA is finished, then 421.
func TestShutdownDrains(t *testing.T) {
	q := newQueue(t)
	s, err := NewServer(testOptions(q))
	if err != nil {
		t.Fatal(err)
	}
	addr, done := serve(t, s)
	idle, busy := dial(t, addr), dial(t, addr)
	idle.expect("EHLO idle.test", "250 ")
	busy.expect("EHLO busy.test", "250 ")
	busy.expect("MAIL FROM:<a@example.org>", "250 ")
	busy.expect("RCPT TO:<b@local.test>", "250 ")
	busy.expect("DATA", "354 ")
	busy.text.W.WriteString("Subject: x\r\n\r\nhalf\r\n")
	busy.text.W.Flush()
	time.Sleep(50 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(context.Background()) }()
	if got := idle.reply(); got[0] != line(replyShutdown) {
		t.Errorf("idle session: %q", got)
	}
	busy.text.W.WriteString("rest\r\n.\r\n")
	busy.text.W.Flush()
	if got := busy.reply(); !strings.HasPrefix(got[0], "250 2.0.0 Ok: queued as ") {
		t.Errorf("message in DATA: %q", got)
	}
	if got := busy.reply(); got[0] != line(replyShutdown) {
		t.Errorf("after the message: %q", got)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown does not return")
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// Error replies past MaxErrors end the session with 421.
func TestErrorLimit(t *testing.T) {
	opts := testOptions(newQueue(t))
	opts.MaxErrors = 2
	c := dial(t, startServer(t, opts))
	c.expect("EHLO client.test", "250 ")
	c.expect("RCPT TO:<b@local.test>", "503 ")
	c.text.PrintfLine("DATA")
	if got := c.reply(); !strings.HasPrefix(got[0], "503 ") {
		t.Fatalf("second error: %q", got)
	}
	if got := c.reply(); got[0] != line(replyTooManyErrors) {
		t.Fatalf("after the second error: %q", got)
	}
	if _, err := c.text.ReadLine(); err == nil {
		t.Error("the connection is still open")
	}
}

// MaxConnsPerClient holds for clients outside RelayNetworks only, and a
// session that ends makes room.
func TestConnectionsPerClient(t *testing.T) {
	opts := testOptions(newQueue(t))
	opts.MaxConnsPerClient = 1
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, s)
	first := dial(t, addr)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 200)
	n, _ := conn.Read(buf)
	if got := string(buf[:n]); got != line(replyTooManyConns)+"\r\n" {
		t.Errorf("second connection: %q", got)
	}
	conn.Close()
	first.expect("QUIT", "221 ")
	time.Sleep(50 * time.Millisecond)
	dial(t, addr).expect("NOOP", "250 ")

	opts.RelayNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	s.Reload(opts)
	a, b := dial(t, addr), dial(t, addr)
	a.expect("NOOP", "250 ")
	b.expect("NOOP", "250 ")
}

// The idle timeout: 421 4.4.2 and close.
func TestIdleTimeout(t *testing.T) {
	opts := testOptions(newQueue(t))
	opts.Timeout = 100 * time.Millisecond
	c := dial(t, startServer(t, opts))
	if got := c.reply(); got[0] != line(replyTimeout) {
		t.Errorf("silent client: %q", got)
	}
}
