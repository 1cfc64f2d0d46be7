package smtpserver

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"yubin/internal/maillog"
	"yubin/internal/queue"
)

// testNow is the clock of every test server, so Received headers are exact.
var testNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

const testDate = "Tue, 4 Mar 2025 05:06:07 +0000 (UTC)"

func newQueue(t *testing.T) *queue.Queue {
	t.Helper()
	q := queue.New(filepath.Join(t.TempDir(), "queue"))
	if err := q.Init(-1, -1); err != nil {
		t.Fatal(err)
	}
	return q
}

// testOptions are the options of a test server on queue q; tests change
// what they need.
func testOptions(q *queue.Queue) Options {
	return Options{
		Hostname:     "mx.test",
		Queue:        q,
		LocalDomains: []string{"local.test"},
		Now:          func() time.Time { return testNow },
		LookupName:   func(context.Context, string) string { return "" },
	}
}

// startServer serves opts on a loopback port until the test ends and
// returns the address.
func startServer(t *testing.T, opts Options) string {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// smtpClient speaks raw SMTP, one line at a time.
type smtpClient struct {
	t    *testing.T
	text *textproto.Conn
}

// dial connects to addr and checks the greeting.
func dial(t *testing.T, addr string) *smtpClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// A test that goes wrong fails rather than hangs.
	conn.SetDeadline(time.Now().Add(time.Minute))
	c := &smtpClient{t: t, text: textproto.NewConn(conn)}
	t.Cleanup(func() { c.text.Close() })
	if got := c.reply(); len(got) != 1 || got[0] != "220 mx.test ESMTP Service Ready" {
		t.Fatalf("greeting %q", got)
	}
	return c
}

// reply reads one reply and returns its lines as sent, without CRLF.
func (c *smtpClient) reply() []string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.text.ReadLine()
		if err != nil {
			c.t.Fatalf("reading reply: %v (after %q)", err, lines)
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return lines
		}
	}
}

// cmd sends a command line and returns the last line of the reply.
func (c *smtpClient) cmd(line string) string {
	c.t.Helper()
	if err := c.text.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	r := c.reply()
	return r[len(r)-1]
}

// expect sends a command line and fails unless the reply's last line
// starts with want ("250 2.0.0"); it returns that line.
func (c *smtpClient) expect(line, want string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s: reply %q, want %q…", line, got, want)
	}
	return got
}

// data sends DATA and the message, given as on the wire (CRLF, dot-stuffed,
// with the final ".\r\n"), and returns the reply to the message.
func (c *smtpClient) data(raw string) string {
	c.t.Helper()
	c.expect("DATA", "354 ")
	if _, err := c.text.W.WriteString(raw); err != nil {
		c.t.Fatal(err)
	}
	if err := c.text.W.Flush(); err != nil {
		c.t.Fatal(err)
	}
	r := c.reply()
	return r[len(r)-1]
}

// queuedID is the queue ID in a "250 2.0.0 Ok: queued as ID" reply.
func queuedID(t *testing.T, reply string) string {
	t.Helper()
	id, ok := strings.CutPrefix(reply, "250 2.0.0 Ok: queued as ")
	if !ok || !queue.ValidID(id) {
		t.Fatalf("reply %q, want 250 2.0.0 Ok: queued as ID", reply)
	}
	return id
}

// readMessage reads message id back from the queue.
func readMessage(t *testing.T, q *queue.Queue, id string) (*queue.Envelope, string) {
	t.Helper()
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := io.ReadAll(m.Body())
	if err != nil {
		t.Fatal(err)
	}
	return m.Envelope(), string(b)
}

// queueEmpty fails unless nothing is in q, committed or half-written.
func queueEmpty(t *testing.T, q *queue.Queue) {
	t.Helper()
	ids, err := q.IDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Errorf("queue holds %v, want nothing", ids)
	}
	if tmp, _ := os.ReadDir(filepath.Join(q.Dir(), "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d files, want none", len(tmp))
	}
}

// logBuffer collects the mail log; the server writes it from its own
// goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureLog sends the mail log to a buffer until the test ends.
func captureLog(t *testing.T) *logBuffer {
	buf := &logBuffer{}
	maillog.SetOutput(buf)
	t.Cleanup(func() { maillog.SetOutput(nil) })
	return buf
}
