package pop3

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"yubin/internal/auth"
)

const bcryptCorrectHorse = "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2"

// testSystem is a users_file and a mail_dir under a temp directory.
type testSystem struct {
	t    *testing.T
	root string
	opts Options
}

func newTestSystem(t *testing.T) *testSystem {
	t.Helper()
	root := t.TempDir()
	ids := fmt.Sprintf(":%d:%d:%s", os.Getuid(), os.Getgid(), root)
	users := filepath.Join(root, "users")
	os.WriteFile(users, []byte("alice:{PLAIN}tanstaaf"+ids+"\nbob:"+bcryptCorrectHorse+ids+"\nbob@other.example:{PLAIN}other"+ids+"\n"), 0o600)
	dir, err := auth.Open(users, "root")
	if err != nil {
		t.Fatal(err)
	}
	return &testSystem{t: t, root: root, opts: Options{
		Hostname:     "pop.test.example",
		MailDir:      filepath.Join(root, "%d", "%u", "Maildir"),
		Users:        dir,
		SwitchUser:   func(*auth.User) error { return nil },
		FailureDelay: -1,
	}}
}

// maildir fills user's Maildir (in the default domain) with files.
func (s *testSystem) maildir(user string, files map[string]string) string {
	dir := filepath.Join(s.root, "pop.test.example", user, "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	return dir
}

// remoteConn makes a loopback connection look like one from afar.
type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 4242}
}

// client is a raw POP3 client.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dial starts a server for one connection with opts and connects to it.
func (s *testSystem) dial(wrap func(net.Conn) net.Conn) (*client, string) {
	s.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := l.Accept()
		l.Close()
		if err != nil {
			return
		}
		if wrap != nil {
			conn = wrap(conn)
		}
		Serve(context.Background(), s.opts, conn)
	}()
	s.t.Cleanup(func() { l.Close(); <-done })
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	c := &client{t: s.t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.line()
}

func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("reply %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends a command and returns the first line of the reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	fmt.Fprintf(c.conn, "%s\r\n", line)
	return c.line()
}

// multi reads the rest of a multi-line reply, unstuffed.
func (c *client) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		if l == "." {
			return lines
		}
		lines = append(lines, strings.TrimPrefix(l, "."))
	}
}

func (c *client) want(line, prefix string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("%s: %q; want %q...", line, got, prefix)
	}
	return got
}

func TestSessionTransaction(t *testing.T) {
	s := newTestSystem(t)
	dir := s.maildir("bob", map[string]string{
		"cur/1700000001.A.h:2,": "Subject: one\n\nfirst\n.dot\n",
		"new/1700000002.B.h":    "Subject: two\r\n\r\nsecond\r\n",
		"new/1700000003.C.h":    "Subject: three\n\nl1\nl2\nl3\n",
	})
	c, greeting := s.dial(nil)
	if !strings.HasPrefix(greeting, "+OK pop.test.example ") || !regexp.MustCompile(` <\d+\.\d+[0-9a-f]+@pop\.test\.example>$`).MatchString(greeting) {
		t.Errorf("greeting %q: want +OK with an APOP timestamp", greeting)
	}
	c.want("STAT", "-ERR STAT is not valid in this state")
	c.want("CAPA", "+OK")
	capa := strings.Join(c.multi(), ",")
	if capa != "TOP,UIDL,RESP-CODES,AUTH-RESP-CODE,PIPELINING,USER,SASL PLAIN,IMPLEMENTATION yubin" {
		t.Errorf("CAPA: %s", capa)
	}
	c.want("PASS x", "-ERR USER first")
	c.want("USER bob", "+OK")
	c.want("PASS correct horse", "+OK bob has 3 messages (83 octets)")
	c.want("USER bob", "-ERR USER is not valid in this state")
	c.want("STAT", "+OK 3 83")
	c.want("LIST", "+OK 3 messages")
	if l := strings.Join(c.multi(), ","); l != "1 29,2 24,3 30" {
		t.Errorf("LIST: %s", l)
	}
	c.want("LIST 2", "+OK 2 24")
	c.want("LIST 4", "-ERR no such message")
	c.want("LIST 0", "-ERR no such message")
	c.want("UIDL", "+OK")
	if l := strings.Join(c.multi(), ","); l != "1 1700000001.A.h,2 1700000002.B.h,3 1700000003.C.h" {
		t.Errorf("UIDL: %s", l)
	}
	c.want("UIDL 3", "+OK 3 1700000003.C.h")
	c.want("RETR 1", "+OK 29 octets")
	if m := strings.Join(c.multi(), "|"); m != "Subject: one||first|.dot" {
		t.Errorf("RETR 1: %q", m)
	}
	c.want("TOP 3 1", "+OK")
	if m := strings.Join(c.multi(), "|"); m != "Subject: three||l1" {
		t.Errorf("TOP 3 1: %q", m)
	}
	c.want("TOP 3 x", "-ERR")
	c.want("DELE 1", "+OK")
	c.want("DELE 1", "-ERR message 1 already deleted")
	c.want("RETR 1", "-ERR message 1 already deleted")
	c.want("STAT", "+OK 2 54")
	c.want("RSET", "+OK maildrop has 3 messages (83 octets)")
	c.want("DELE 2", "+OK")
	c.want("NOOP", "+OK")
	c.want("QUIT", "+OK pop.test.example POP3 server signing off (2 messages left)")
	names, _ := readNames(filepath.Join(dir, "cur"))
	got := strings.Join(sortStrings(names), ",")
	if got != "1700000001.A.h:2,S,1700000003.C.h:2," {
		t.Errorf("cur/ after QUIT: %s", got)
	}
	if news, _ := readNames(filepath.Join(dir, "new")); len(news) != 0 {
		t.Errorf("new/ after the session: %q", news)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// A dropped connection deletes nothing.
func TestDeleteThenDrop(t *testing.T) {
	s := newTestSystem(t)
	dir := s.maildir("alice", map[string]string{"new/1.a.h": "S: 1\n\n1\n"})
	c, _ := s.dial(nil)
	c.want("USER alice", "+OK")
	c.want("PASS tanstaaf", "+OK")
	c.want("DELE 1", "+OK")
	c.conn.Close()
	time.Sleep(100 * time.Millisecond)
	if names, _ := readNames(filepath.Join(dir, "cur")); len(names) != 1 {
		t.Errorf("cur/ after a drop: %q; want the message kept", names)
	}
	c, _ = s.dial(nil)
	c.want("USER alice", "+OK")
	c.want("PASS tanstaaf", "+OK alice has 1 messages")
}

func TestFailedLogins(t *testing.T) {
	s := newTestSystem(t)
	s.opts.MaxFailures = 3
	c, _ := s.dial(nil)
	var replies []string
	for _, up := range [][2]string{{"bob", "wrong"}, {"nobody", "correct horse"}, {"../../etc", "x"}} {
		c.want("USER "+up[0], "+OK")
		replies = append(replies, c.cmd("PASS "+up[1]))
	}
	for _, r := range replies {
		if r != replyAuthFailed {
			t.Errorf("failed login answered %q; want %q", r, replyAuthFailed)
		}
	}
	// After MaxFailures the session ends.
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Error("session goes on after 3 failures")
	}
}

func TestFailureDelayGrows(t *testing.T) {
	s := newTestSystem(t)
	s.opts.FailureDelay = 50 * time.Millisecond
	c, _ := s.dial(nil)
	var took []time.Duration
	for range 2 {
		c.want("USER bob", "+OK")
		start := time.Now()
		c.want("PASS wrong", "-ERR [AUTH]")
		took = append(took, time.Since(start))
	}
	if took[0] < 50*time.Millisecond || took[1] < 100*time.Millisecond {
		t.Errorf("failed logins answered after %v; want at least 50ms, then 100ms", took)
	}
}

func TestLoginNames(t *testing.T) {
	s := newTestSystem(t)
	os.MkdirAll(filepath.Join(s.root, "other.example", "bob", "Maildir", "new"), 0o700)
	os.WriteFile(filepath.Join(s.root, "other.example", "bob", "Maildir", "new", "1.x.h"), []byte("S: 1\n\n"), 0o600)
	for _, tt := range []struct{ user, pass, want string }{
		{"BOB", "correct horse", "+OK BOB has 0 messages"},
		{"bob@other.example", "other", "+OK bob@other.example has 1 messages"},
		{"bob@Other.Example.", "other", "+OK"},
		{"bob@other.example", "correct horse", replyAuthFailed},
		{"bob@../../x", "correct horse", replyAuthFailed},
		{"bob@a/b", "correct horse", replyAuthFailed},
		{"..", "x", replyAuthFailed},
		{"-bob", "x", replyAuthFailed},
		{".bob", "x", replyAuthFailed},
	} {
		c, _ := s.dial(nil)
		c.want("USER "+tt.user, "+OK")
		if got := c.cmd("PASS " + tt.pass); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%s/%s: %q; want %q", tt.user, tt.pass, got, tt.want)
		}
		c.cmd("QUIT")
	}
	if _, err := os.Stat(filepath.Join(s.root, "x")); err == nil {
		t.Error("a traversal name created a directory")
	}
}

func TestMaildropInUse(t *testing.T) {
	s := newTestSystem(t)
	s.maildir("alice", map[string]string{"new/1.a.h": "S: 1\n\n1\n"})
	c1, _ := s.dial(nil)
	c1.want("USER alice", "+OK")
	c1.want("PASS tanstaaf", "+OK alice has 1 messages")
	c2, _ := s.dial(nil)
	c2.want("USER alice", "+OK")
	c2.want("PASS tanstaaf", replyInUse)
	c1.want("QUIT", "+OK")
	c3, _ := s.dial(nil)
	c3.want("USER alice", "+OK")
	c3.want("PASS tanstaaf", "+OK alice has 1 messages")
}

func TestAPOP(t *testing.T) {
	s := newTestSystem(t)
	c, greeting := s.dial(nil)
	banner := greeting[strings.LastIndexByte(greeting, '<'):]
	digest := func(secret string) string {
		sum := md5.Sum([]byte(banner + secret))
		return hex.EncodeToString(sum[:])
	}
	c.want("APOP alice "+digest("wrong"), replyAuthFailed)
	c.want("APOP bob "+digest("correct horse"), replyAuthFailed) // no clear secret
	c.want("APOP nobody "+digest("x"), replyAuthFailed)
	c.want("APOP alice "+strings.ToUpper(digest("tanstaaf")), "+OK alice has 0 messages")
}

func TestNoAPOPWithoutPlainSecrets(t *testing.T) {
	s := newTestSystem(t)
	users := filepath.Join(s.root, "users2")
	os.WriteFile(users, []byte("bob:"+bcryptCorrectHorse+"\n"), 0o600)
	s.opts.Users, _ = auth.Open(users, "root")
	c, greeting := s.dial(nil)
	if strings.Contains(greeting, "<") {
		t.Errorf("greeting %q offers APOP", greeting)
	}
	c.want("APOP bob 0123456789abcdef0123456789abcdef", "-ERR APOP is not available")
}

func TestAuthPlain(t *testing.T) {
	s := newTestSystem(t)
	plain := func(id, user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte(id + "\x00" + user + "\x00" + pass))
	}
	c, _ := s.dial(nil)
	c.want("AUTH", "+OK")
	if m := strings.Join(c.multi(), ","); m != "PLAIN" {
		t.Errorf("AUTH lists %q", m)
	}
	c.want("AUTH CRAM-MD5", "-ERR unrecognized")
	c.want("AUTH PLAIN "+plain("", "bob", "wrong"), replyAuthFailed)
	c.want("AUTH PLAIN "+plain("alice", "bob", "correct horse"), replyAuthFailed)
	c.want("AUTH PLAIN !!!", "-ERR invalid base64")
	c.want("AUTH PLAIN", "+ ")
	c.want("*", "-ERR authentication cancelled")
	c.want("AUTH PLAIN", "+ ")
	c.want(plain("bob", "bob", "correct horse"), "+OK bob has 0 messages")
}

func TestPlaintextFromAfar(t *testing.T) {
	s := newTestSystem(t)
	c, _ := s.dial(func(c net.Conn) net.Conn { return remoteConn{c} })
	c.want("USER bob", replyPlaintext)
	c.want("PASS correct horse", replyPlaintext)
	c.want("AUTH PLAIN AGJvYgBjb3JyZWN0IGhvcnNl", replyPlaintext)
	c.want("CAPA", "+OK")
	if capa := strings.Join(c.multi(), ","); strings.Contains(capa, "USER") || strings.Contains(capa, "SASL") {
		t.Errorf("CAPA offers passwords without TLS: %s", capa)
	}
	c.want("STLS", "-ERR STLS is not available")

	s.opts.PlaintextAuth = true
	c, _ = s.dial(func(c net.Conn) net.Conn { return remoteConn{c} })
	c.want("USER bob", "+OK")
	c.want("PASS correct horse", "+OK")
}

func TestSTLS(t *testing.T) {
	s := newTestSystem(t)
	cert := testCertificate(t)
	s.opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	c, _ := s.dial(func(c net.Conn) net.Conn { return remoteConn{c} })
	c.want("CAPA", "+OK")
	if capa := strings.Join(c.multi(), ","); !strings.Contains(capa, "STLS") {
		t.Errorf("CAPA lacks STLS: %s", capa)
	}
	c.want("USER bob", replyPlaintext)
	// A command pipelined behind STLS is dropped, not run after TLS.
	fmt.Fprintf(c.conn, "STLS\r\nUSER injected\r\n")
	if l := c.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("STLS: %q", l)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tc := tls.Client(c.conn, &tls.Config{RootCAs: pool, ServerName: "pop.test.example"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	c.want("PASS correct horse", "-ERR USER first")
	c.want("CAPA", "+OK")
	if capa := strings.Join(c.multi(), ","); strings.Contains(capa, "STLS") || !strings.Contains(capa, "USER") {
		t.Errorf("CAPA after STLS: %s", capa)
	}
	c.want("STLS", "-ERR already using TLS")
	c.want("USER bob", "+OK")
	c.want("PASS correct horse", "+OK bob has 0 messages")
}

// testCertificate makes a self-signed certificate for pop.test.example.
func testCertificate(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		DNSNames:              []string{"pop.test.example"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestGarbageAndLongLines(t *testing.T) {
	s := newTestSystem(t)
	c, _ := s.dial(nil)
	for i := range 1000 {
		garbage := fmt.Sprintf("\x01GARBAGE %d \xff\xfe", i)
		if i%3 == 0 {
			garbage = fmt.Sprintf("XYZ%d", i)
		}
		if r := c.cmd(garbage); !strings.HasPrefix(r, "-ERR ") {
			t.Fatalf("garbage %q: %q", garbage, r)
		}
	}
	c.want(strings.Repeat("A", 5000), "-ERR line too long")
	c.want("", "-ERR empty command")
	c.want("USER bob", "+OK")
	c.want("PASS correct horse", "+OK")
	c.want("STAT", "+OK 0 0")
}

func TestPipelining(t *testing.T) {
	s := newTestSystem(t)
	s.maildir("alice", map[string]string{"new/1.a.h": "S: 1\n\n1\n"})
	c, _ := s.dial(nil)
	fmt.Fprintf(c.conn, "USER alice\r\nPASS tanstaaf\r\nSTAT\r\nUIDL 1\r\nQUIT\r\n")
	var got []string
	for range 5 {
		got = append(got, c.line())
	}
	if want := "+OK send PASS|+OK alice has 1 messages (11 octets)|+OK 1 11|+OK 1 1.a.h|+OK pop.test.example POP3 server signing off (1 messages left)"; strings.Join(got, "|") != want {
		t.Errorf("pipelined replies:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newTestSystem(t)
	s.opts.IdleTimeout = 100 * time.Millisecond
	c, _ := s.dial(nil)
	if l := c.line(); l != "-ERR disconnected for inactivity" {
		t.Errorf("after the idle timeout: %q", l)
	}
}
