package test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// smtpd is a standalone smtpd of a system, on 127.0.0.1 ports.
type smtpd struct {
	*system
	port, subPort int
	cmd           *exec.Cmd
	log           *syncBuffer
	runner        bool // start smtpd's queue runner too
}

// syncBuffer is smtpd's stderr (its mail log), written by the process.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startSmtpd writes a system with the extra configuration lines, a user
// bob (password "secret") and an alias postmaster, and runs smtpd on it
// until the test ends. The tests run as root: mail_owner root keeps the
// queue in the test's temp directory writable.
func startSmtpd(t *testing.T, extra ...string) *smtpd {
	t.Helper()
	port, subPort := freePort(t), freePort(t)
	s := &smtpd{port: port, subPort: subPort, log: &syncBuffer{}}
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("bob:{PLAIN}secret\n"), 0o600)
	s.system = newSystem(t, append([]string{
		fmt.Sprintf("smtp_listen = 127.0.0.1:%d", port),
		fmt.Sprintf("submission_listen = 127.0.0.1:%d", subPort),
		"users_file = " + users,
		"mail_owner = " + currentUser(t),
	}, extra...)...)
	os.WriteFile(filepath.Join(s.dir, "aliases"), []byte("postmaster: bob\nsales: bob, carol@elsewhere.example\n"), 0o644)
	s.start()
	return s
}

func currentUser(t *testing.T) string {
	if os.Geteuid() == 0 {
		return "root"
	}
	u := os.Getenv("USER")
	if u == "" {
		t.Skip("no $USER to be mail_owner")
	}
	return u
}

func (s *smtpd) start() {
	s.t.Helper()
	// Most tests look at what smtpd queued: no runner takes it away.
	s.cmd = s.command("smtpd", "--no-runner")
	if s.runner {
		s.cmd = s.command("smtpd")
	}
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd := s.cmd
	s.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if s.t.Failed() {
			s.t.Logf("smtpd log:\n%s", s.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("smtpd does not listen: %v\n%s", err, s.log.String())
		}
	}
}

// rawClient speaks SMTP over a socket, one line at a time.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (s *smtpd) dial(port int) *rawClient {
	s.t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		s.t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &rawClient{t: s.t, conn: conn, r: bufio.NewReader(conn)}
	s.t.Cleanup(func() { conn.Close() })
	if g := c.reply(); !strings.HasPrefix(g, "220 "+s.hostname+" ") {
		s.t.Fatalf("greeting %q", g)
	}
	return c
}

// reply reads one reply and returns its last line.
func (c *rawClient) reply() string {
	c.t.Helper()
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading reply: %v (%q)", err, l)
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

func (c *rawClient) send(raw string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(raw)); err != nil {
		c.t.Fatal(err)
	}
}

// expect sends a command and checks that its reply starts with want.
func (c *rawClient) expect(cmd, want string) string {
	c.t.Helper()
	c.send(cmd + "\r\n")
	got := c.reply()
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%.60q: reply %q, want %q…", cmd, got, want)
	}
	return got
}

// closed checks that the server has closed the connection.
func (c *rawClient) closed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l, err := c.r.ReadString('\n'); err == nil {
		c.t.Fatalf("connection still open: read %q", l)
	}
}

// sendMail runs one whole transaction and returns the queue ID.
func (c *rawClient) sendMail(from, to, raw string) string {
	c.t.Helper()
	c.expect("MAIL FROM:<"+from+">", "250 ")
	c.expect("RCPT TO:<"+to+">", "250 ")
	c.expect("DATA", "354 ")
	c.send(raw)
	got := c.reply()
	id, ok := strings.CutPrefix(got, "250 2.0.0 Ok: queued as ")
	if !ok {
		c.t.Fatalf("message: %q, want 250 queued", got)
	}
	return id
}

// normalSession checks that the server still serves a whole session.
func (s *smtpd) normalSession() string {
	s.t.Helper()
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	id := c.sendMail("alice@example.org", "bob@"+s.hostname, "Subject: normal\r\n\r\nstill here\r\n.\r\n")
	c.expect("QUIT", "221 ")
	return id
}

// body is the queued message without the Received header smtpd added.
func (s *smtpd) body(id string) string {
	s.t.Helper()
	m := s.message(id)
	i := strings.Index(m, "\n\tby ")
	if !strings.HasPrefix(m, "Received: from ") || i < 0 {
		s.t.Fatalf("message does not start with Received:\n%.300s", m)
	}
	// The header ends at the first line not folded into it.
	rest := m[i+1:]
	for strings.HasPrefix(rest, "\t") {
		rest = rest[strings.IndexByte(rest, '\n')+1:]
	}
	return rest
}

// The classic telnet session (RFC 5321 Appendix D and every MTA's
// transcript), line by line, with the mistakes people make typing it.
func TestSmtpdTelnetSession(t *testing.T) {
	s := startSmtpd(t)
	c := s.dial(s.port)
	for _, step := range []struct{ cmd, want string }{
		{"MAIL FROM:<alice@example.org>", "503 5.5.1 "}, // before HELO
		{"HELO client.example", "250 "},
		{"EHLO client.example", "250 "},
		{"NOOP", "250 2.0.0 "},
		{"VRFY bob", "252 2.5.0 "},
		{"EXPN staff", "502 5.5.1 "},
		{"HELP", "502 5.5.1 "},
		{"SEND FROM:<a@example.org>", "502 5.5.1 "},
		{"SOML FROM:<a@example.org>", "502 5.5.1 "},
		{"SAML FROM:<a@example.org>", "502 5.5.1 "},
		{"TURN", "502 5.5.1 "},
		{"RCPT TO:<bob@mx.test.example>", "503 5.5.1 "}, // before MAIL
		{"DATA", "503 5.5.1 "},
		{"MAIL form: alice@example.org", "501 5.5.2 "},  // the famous typo
		{"mail from:<alice@example.org>", "250 2.0.0 "}, // case does not matter
		{"MAIL FROM:<alice@example.org>", "503 5.5.1 "}, // nested
		{"DATA", "503 5.5.1 "},                          // before RCPT
		{"RCPT TO:<nobody@mx.test.example>", "550 5.1.1 "},
		{"RCPT TO:<bob@mx.test.example> FOO=BAR", "555 5.5.4 "},
		{"RCPT TO:<bob@mx.test.example>", "250 2.0.0 "},
		{"RCPT TO:<Postmaster@mx.test.example>", "250 2.0.0 "},
		{"XYZZY", "500 5.5.2 "},
		{"RSET", "250 2.0.0 "},
		{"DATA", "503 5.5.1 "},
		{"MAIL FROM:<>", "250 2.0.0 "},
		{"RCPT TO:<sales@mx.test.example>", "250 2.0.0 "},
		{"DATA", "354 "},
	} {
		c.expect(step.cmd, step.want)
	}
	c.send("Subject: telnet\r\n\r\nTyped by hand.\r\n.\r\n")
	if r := c.reply(); !strings.HasPrefix(r, "250 2.0.0 Ok: queued as ") {
		t.Fatalf("end of data: %q", r)
	}
	c.expect("QUIT", "221 2.0.0 ")
	c.closed()
	envs := s.queue()
	if len(envs) != 1 || envs[0].From != "" || rcpts(envs[0])[0] != "sales@mx.test.example" || envs[0].Proto != "ESMTP" {
		t.Fatalf("queued %+v", envs)
	}
	head := s.message(envs[0].ID)
	if !strings.HasPrefix(head, "Received: from client.example (") || !strings.Contains(head, " [127.0.0.1])\n\tby mx.test.example (yubin) with ESMTP id "+envs[0].ID+"\n\tfor <sales@mx.test.example>; ") {
		t.Errorf("Received header:\n%.300s", head)
	}
	for _, want := range []string{"event=connect proto=smtp client=127.0.0.1", envs[0].ID + ": client=", "NOQUEUE: reject: RCPT from ", "event=disconnect proto=smtp result=closed msgs=1"} {
		s.waitLog(want)
	}
}

// waitLog waits for a line with want in smtpd's log, which is written
// after the client has seen the reply.
func (s *smtpd) waitLog(want string) {
	s.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.log.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("log lacks %q:\n%s", want, s.log.String())
		}
	}
}

// RFC 2920: a client sends a whole transaction at once and reads the
// replies after; they come in order.
func TestSmtpdPipelining(t *testing.T) {
	s := startSmtpd(t)
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@mx.test.example>\r\nRCPT TO:<nobody@mx.test.example>\r\nRCPT TO:<postmaster@mx.test.example>\r\nDATA\r\n")
	for _, want := range []string{"250 ", "250 ", "550 5.1.1 ", "250 ", "354 "} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined reply %q, want %q", got, want)
		}
	}
	c.send("Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@mx.test.example>\r\nDATA\r\n")
	for _, want := range []string{"250 2.0.0 Ok: queued", "250 ", "250 ", "354 "} {
		if got := c.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("pipelined reply %q, want %q", got, want)
		}
	}
	c.send("second\r\n.\r\nQUIT\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued") {
		t.Fatal(got)
	}
	if got := c.reply(); !strings.HasPrefix(got, "221 ") {
		t.Fatal(got)
	}
	if n := len(s.queue()); n != 2 {
		t.Fatalf("%d messages queued, want 2", n)
	}
}

// What the client sends is what is stored, byte for byte (CRLF as LF):
// dot-stuffing undone, 8-bit, UTF-8, NUL, bare LF and lone CR kept.
func TestSmtpdBodiesByteExact(t *testing.T) {
	s := startSmtpd(t)
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	for _, tc := range []struct{ name, wire, stored string }{
		{"dots", "Subject: d\r\n\r\n..leading dot\r\n...two\r\n.\r\n", "Subject: d\n\n.leading dot\n..two\n"},
		{"8-bit", "Subject: latin-1\r\n\r\ncaf\xe9 \xff\xfe\r\n.\r\n", "Subject: latin-1\n\ncaf\xe9 \xff\xfe\n"},
		{"UTF-8", "Subject: =?UTF-8?Q?x?=\r\n\r\n郵便 ünïcödé 📮\r\n.\r\n", "Subject: =?UTF-8?Q?x?=\n\n郵便 ünïcödé 📮\n"},
		{"NUL", "Subject: nul\r\n\r\na\x00b\r\n\x00\r\n.\r\n", "Subject: nul\n\na\x00b\n\x00\n"},
		{"bare LF and CR", "Subject: lf\r\n\r\none\ntwo\rthree\r\n.\r\n", "Subject: lf\n\none\ntwo\rthree\n"},
		{"no final newline", "Subject: x\r\n\r\nend", "Subject: x\n\nend\n"},
	} {
		wire := tc.wire
		if tc.name == "no final newline" {
			wire += "\r\n.\r\n"
		}
		id := c.sendMail("a@example.org", "bob@mx.test.example", wire)
		if got := s.body(id); got != tc.stored {
			t.Errorf("%s: stored %q, want %q", tc.name, got, tc.stored)
		}
	}
	// A bare LF ends a command line too.
	c.send("NOOP\n")
	if got := c.reply(); !strings.HasPrefix(got, "250 ") {
		t.Errorf("NOOP with bare LF: %q", got)
	}
	c.expect("QUIT", "221 ")
	s.normalSession()
}

// A 20 MB message goes through; one over message_size_limit gets 552,
// at MAIL when SIZE says so, else after DATA, and nothing is queued.
func TestSmtpdMessageSizes(t *testing.T) {
	s := startSmtpd(t, "message_size_limit = 21m")
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	line := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.!", 15) + "\r\n" // 962 bytes
	big := strings.Repeat(line, 20<<20/len(line))
	id := c.sendMail("a@example.org", "bob@mx.test.example", "Subject: big\r\n\r\n"+big+".\r\n")
	if got := s.body(id); len(got) != len("Subject: big\n\n")+len(big)-strings.Count(big, "\r") {
		t.Errorf("20 MB message stored as %d bytes", len(got))
	}
	c.expect("MAIL FROM:<a@example.org> SIZE=30000000", "552 5.3.4 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<bob@mx.test.example>", "250 ")
	c.expect("DATA", "354 ")
	c.send("Subject: too big\r\n\r\n" + big + strings.Repeat(line, 2200) + ".\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "552 5.3.4 ") {
		t.Fatalf("over-size message: %q", got)
	}
	c.expect("NOOP", "250 ")
	if n := len(s.queue()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
	s.normalSession()
}

// Every classic relay trick is refused from a client outside
// relay_networks, as is plain relaying; local recipients still work.
func TestSmtpdRelayTricksRefused(t *testing.T) {
	s := startSmtpd(t, "relay_networks = 192.0.2.0/24")
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	for _, rcpt := range []string{
		"carol@elsewhere.example",
		"carol%elsewhere.example@mx.test.example",
		`"carol@elsewhere.example"@mx.test.example`,
		"@mx.test.example:carol@elsewhere.example",
		"elsewhere.example!carol@mx.test.example",
		"carol@[192.0.2.1]",
		"bob@mx.test.example.elsewhere.example",
	} {
		c.expect("RCPT TO:<"+rcpt+">", "554 5.7.1 ")
	}
	c.expect("RCPT TO:<bob@MX.TEST.EXAMPLE>", "250 ")
	c.expect("QUIT", "221 ")
	s.normalSession()
}

// From relay_networks (loopback by default) any domain is taken on port
// 25; on the submission port only after AUTH, which loopback may do
// without TLS. smtplib drives it.
func TestSmtpdSmtplibRelayAndSubmission(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	s := startSmtpd(t)
	out := runPython(t, `
import smtplib, sys
port, sub = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example")
print("relay25", s.sendmail("a@example.org", ["carol@elsewhere.example", "bob@mx.test.example"], "Subject: 25\r\n\r\nx\r\n"))
print("auth25", "auth" in s.esmtp_features)
s.quit()
s = smtplib.SMTP("127.0.0.1", sub, local_hostname="client.example")
s.ehlo()
print("mechs", s.esmtp_features.get("auth", "").strip())
try:
    s.sendmail("a@example.org", ["carol@elsewhere.example"], "Subject: no auth\r\n\r\nx\r\n")
except smtplib.SMTPRecipientsRefused as e:
    print("refused", e.recipients["carol@elsewhere.example"][0])
try:
    s.login("bob", "wrong")
except smtplib.SMTPAuthenticationError as e:
    print("badpw", e.smtp_code)
print("login", s.login("bob", "secret")[0])
print("relay587", s.sendmail("bob@mx.test.example", ["carol@elsewhere.example"], "Subject: 587\r\n\r\nx\r\n"))
s.quit()
s = smtplib.SMTP("127.0.0.1", sub, local_hostname="client.example")
s.ehlo()
s.user, s.password = "bob", "secret"
print("login-mech", s.auth("LOGIN", s.auth_login)[0])
s.quit()
`, fmt.Sprint(s.port), fmt.Sprint(s.subPort))
	for _, want := range []string{"relay25 {}", "auth25 False", "mechs PLAIN LOGIN", "refused 554", "badpw 535", "login 235", "relay587 {}", "login-mech 235"} {
		if !strings.Contains(out, want) {
			t.Errorf("smtplib output lacks %q:\n%s", want, out)
		}
	}
	protos := map[string]string{}
	for _, env := range s.queue() {
		protos[env.Proto] = env.User
	}
	if _, ok := protos["ESMTP"]; !ok || protos["ESMTPA"] != "bob" {
		t.Errorf("protocols and users queued: %v", protos)
	}
}

func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("python3", append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

// swaks on port 25 (STARTTLS offered), and on the submission port with
// AUTH from loopback without TLS and, when swaks has its TLS module, with
// STARTTLS; smtplib does STARTTLS with the test certificate and AUTH. The
// Received header says ESMTPA and ESMTPSA.
func TestSmtpdSwaksAndStartTLS(t *testing.T) {
	cert, key := pop3Certificate(t, t.TempDir())
	s := startSmtpd(t, "tls_cert = "+cert, "tls_key = "+key)
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Log("swaks is not installed (scripts/test-deps installs it as root): skipping its part")
	} else {
		swaks := func(args ...string) string {
			out, err := exec.Command("swaks", append([]string{"--helo", "client.example", "--from", "a@example.org", "--timeout", "20"}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("swaks %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		out := swaks("--server", fmt.Sprintf("127.0.0.1:%d", s.port), "--to", "bob@mx.test.example")
		if !strings.Contains(out, "STARTTLS") || !strings.Contains(out, "<-  250 2.0.0 Ok: queued as") {
			t.Errorf("plain swaks session:\n%s", out)
		}
		out = swaks("--server", fmt.Sprintf("127.0.0.1:%d", s.subPort), "--auth", "LOGIN",
			"--auth-user", "bob", "--auth-password", "secret", "--to", "carol@elsewhere.example")
		if !strings.Contains(out, "<-  235 2.0.0 ") || !strings.Contains(out, "<-  250 2.0.0 Ok: queued as") {
			t.Errorf("swaks AUTH LOGIN session:\n%s", out)
		}
		if support, _ := exec.Command("swaks", "--support").CombinedOutput(); strings.Contains(string(support), "=== STARTTLS supported") {
			out = swaks("--server", fmt.Sprintf("127.0.0.1:%d", s.subPort), "--tls", "--auth", "PLAIN",
				"--auth-user", "bob", "--auth-password", "secret", "--to", "carol@elsewhere.example")
			if !strings.Contains(out, "<~  235 2.0.0 ") || !strings.Contains(out, "<~  250 2.0.0 Ok: queued as") {
				t.Errorf("swaks STARTTLS + AUTH session:\n%s", out)
			}
		} else {
			t.Log("swaks has no STARTTLS (Net::SSLeay missing): smtplib tests it")
		}
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	out := runPython(t, `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.example")
s.ehlo()
print("before", "starttls" in s.esmtp_features, "auth" in s.esmtp_features)
print("starttls", s.starttls(context=ctx)[0])
s.ehlo()
print("after", "starttls" in s.esmtp_features, s.esmtp_features.get("auth", "").strip())
print("login", s.login("bob", "secret")[0])
print("sent", s.sendmail("bob@mx.test.example", ["carol@elsewhere.example"], "Subject: tls\r\n\r\nx\r\n"))
s.quit()
`, fmt.Sprint(s.subPort), cert)
	for _, want := range []string{"before True True", "starttls 220", "after False PLAIN LOGIN", "login 235", "sent {}"} {
		if !strings.Contains(out, want) {
			t.Errorf("smtplib output lacks %q:\n%s", want, out)
		}
	}
	protos := map[string]bool{}
	for _, env := range s.queue() {
		protos[env.Proto] = true
		if m := s.message(env.ID); !strings.Contains(m, "with "+env.Proto+" id "+env.ID) {
			t.Errorf("Received header:\n%.300s", m)
		}
	}
	if !protos["ESMTPSA"] {
		t.Errorf("no message queued with ESMTPSA: %v", protos)
	}
	log := s.log.String()
	if !strings.Contains(log, "event=auth proto=smtp user=bob mech=PLAIN result=ok") {
		t.Errorf("log lacks the AUTH line:\n%s", log)
	}
	if strings.Contains(log, "secret") {
		t.Error("the password is in the log")
	}
}

// Garbage: a 10,000-byte command line (500, closed), NUL bytes in a
// command (500, the session goes on), and go-smtp's limit of four unknown
// commands (421, closed); a normal session after each.
func TestSmtpdBadInput(t *testing.T) {
	s := startSmtpd(t)
	c := s.dial(s.port)
	c.send("EHLO " + strings.Repeat("x", 10000) + "\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "500 ") {
		t.Errorf("10,000-byte line: %q", got)
	}
	c.closed()
	s.normalSession()

	c = s.dial(s.port)
	c.expect("EH\x00LO client.example", "500 ")
	c.expect("EHLO client.example", "250 ")
	c.expect("MAIL FROM:<a\x00b@example.org>", "501 ")
	c.expect("QUIT", "221 ")
	s.normalSession()

	c = s.dial(s.port)
	for range 3 {
		c.expect("BOGUS", "500 5.5.2 ")
	}
	c.send("BOGUS\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "500 5.5.2") {
		t.Errorf("fourth unknown command: %q", got)
	}
	if got := c.reply(); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Errorf("after four unknown commands: %q", got)
	}
	c.closed()
	s.normalSession()
}

// smtp_error_limit error replies of any kind end the session with 421.
func TestSmtpdErrorLimit(t *testing.T) {
	s := startSmtpd(t, "smtp_error_limit = 3")
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<nobody@mx.test.example>", "550 ")
	c.expect("RCPT TO:<nobody2@mx.test.example>", "550 ")
	c.send("RCPT TO:<nobody3@mx.test.example>\r\n")
	if got := c.reply(); !strings.HasPrefix(got, "550 ") {
		t.Fatalf("third error: %q", got)
	}
	if got := c.reply(); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Fatalf("after the third error: %q", got)
	}
	c.closed()
	s.normalSession()
}

// A client that sends nothing is told 421 after smtp_timeout, and one
// that stops in the middle of DATA after smtp_data_timeout.
func TestSmtpdIdleTimeout(t *testing.T) {
	s := startSmtpd(t, "smtp_timeout = 1s", "smtp_data_timeout = 2s")
	c := s.dial(s.port)
	start := time.Now()
	if got := c.reply(); !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Fatalf("silent client: %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %v", d)
	}
	c.closed()
	c = s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<bob@mx.test.example>", "250 ")
	c.expect("DATA", "354 ")
	c.send("Subject: half\r\n\r\nand then nothing")
	time.Sleep(1500 * time.Millisecond) // longer than smtp_timeout: DATA has its own
	c.send(" more")
	if got := c.reply(); !strings.HasPrefix(got, "421 4.4.2 ") {
		t.Fatalf("silent in DATA: %q", got)
	}
	c.closed()
	if n := len(s.queue()); n != 0 {
		t.Errorf("%d messages queued, want none", n)
	}
	s.waitLog("result=timeout")
	s.normalSession()
}

// 500 clients at once, each sending a message, then a normal session.
func TestSmtpdParallelConnections(t *testing.T) {
	s := startSmtpd(t)
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(conn, "EHLO c%d.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@mx.test.example>\r\nDATA\r\n", i)
			r := bufio.NewReader(conn)
			var replies []string
			for len(replies) < 5 {
				l, err := r.ReadString('\n')
				if err != nil {
					errs <- fmt.Errorf("client %d: %v after %q", i, err, replies)
					return
				}
				if l[3] == ' ' {
					replies = append(replies, l)
				}
			}
			fmt.Fprintf(conn, "Subject: %d\r\n\r\nparallel\r\n.\r\nQUIT\r\n", i)
			l, _ := r.ReadString('\n')
			if !strings.HasPrefix(l, "250 2.0.0 Ok: queued") {
				errs <- fmt.Errorf("client %d: %q", i, l)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(s.queue()); got != n {
		t.Errorf("%d messages queued, want %d", got, n)
	}
	s.normalSession()
}

// smtp_client_connection_limit applies to clients outside relay_networks.
func TestSmtpdConnectionsPerClient(t *testing.T) {
	s := startSmtpd(t, "relay_networks = 192.0.2.0/24", "smtp_client_connection_limit = 2")
	// start's readiness probe counts until its session has ended (smtpd
	// logs a connection when it admits it, and its end once it no longer
	// counts).
	waitFor(t, 5*time.Second, func() bool {
		log := s.log.String()
		connects := strings.Count(log, "event=connect")
		return connects >= 1 && strings.Count(log, "event=disconnect") >= connects
	})
	c1, c2 := s.dial(s.port), s.dial(s.port)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	c3 := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if got := c3.reply(); !strings.HasPrefix(got, "421 4.7.0 ") {
		t.Fatalf("third connection: %q", got)
	}
	c3.closed()
	c1.expect("QUIT", "221 ")
	c1.closed()
	c2.expect("EHLO client.example", "250 ")
	c2.sendMail("a@example.org", "bob@mx.test.example", "Subject: c2\r\n\r\nx\r\n.\r\n")
	c2.expect("QUIT", "221 ")
	c2.closed()
	s.normalSession()
}

// SIGTERM: a session waiting for a command gets 421 at once; one in DATA
// finishes its message (250) and then gets 421.
func TestSmtpdShutdown(t *testing.T) {
	s := startSmtpd(t)
	idle := s.dial(s.port)
	idle.expect("EHLO idle.example", "250 ")
	busy := s.dial(s.port)
	busy.expect("EHLO busy.example", "250 ")
	busy.expect("MAIL FROM:<a@example.org>", "250 ")
	busy.expect("RCPT TO:<bob@mx.test.example>", "250 ")
	busy.expect("DATA", "354 ")
	busy.send("Subject: in flight\r\n\r\nfirst half\r\n")
	time.Sleep(200 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if got := idle.reply(); !strings.HasPrefix(got, "421 4.3.2 ") {
		t.Errorf("idle session: %q", got)
	}
	idle.closed()
	time.Sleep(200 * time.Millisecond)
	busy.send("second half\r\n.\r\n")
	if got := busy.reply(); !strings.HasPrefix(got, "250 2.0.0 Ok: queued") {
		t.Errorf("message in DATA: %q", got)
	}
	if got := busy.reply(); !strings.HasPrefix(got, "421 4.3.2 ") {
		t.Errorf("after the message: %q", got)
	}
	busy.closed()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("smtpd exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("smtpd still running")
	}
	if envs := s.queue(); len(envs) != 1 {
		t.Errorf("%d messages queued, want 1", len(envs))
	}
}

// SIGHUP re-reads the aliases: a new alias is taken without a restart.
func TestSmtpdReloadAliases(t *testing.T) {
	s := startSmtpd(t)
	c := s.dial(s.port)
	c.expect("EHLO client.example", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<newlist@mx.test.example>", "550 5.1.1 ")
	os.WriteFile(filepath.Join(s.dir, "aliases"), []byte("postmaster: bob\nnewlist: bob\n"), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitLog("event=reload proto=smtp result=ok")
	c.expect("RCPT TO:<newlist@mx.test.example>", "250 ")
	c.expect("QUIT", "221 ")
}

// smtps_listen: TLS from the first byte (RFC 8314, port 465), submission
// rules inside; smtplib's SMTP_SSL logs in and relays.
func TestSmtpdImplicitTLS(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	cert, key := pop3Certificate(t, t.TempDir())
	tport := freePort(t)
	s := startSmtpd(t, "tls_cert = "+cert, "tls_key = "+key, fmt.Sprintf("smtps_listen = 127.0.0.1:%d", tport))
	out := runPython(t, `
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), local_hostname="client.example", context=ctx)
s.ehlo()
print("features", "starttls" in s.esmtp_features, s.esmtp_features.get("auth", "").strip())
try:
    s.sendmail("bob@mx.test.example", ["carol@elsewhere.example"], "Subject: no auth\r\n\r\nx\r\n")
except smtplib.SMTPRecipientsRefused as e:
    print("refused", e.recipients["carol@elsewhere.example"][0])
print("login", s.login("bob", "secret")[0])
print("sent", s.sendmail("bob@mx.test.example", ["carol@elsewhere.example"], "Subject: 465\r\n\r\nx\r\n"))
s.quit()
`, fmt.Sprint(tport), cert)
	for _, want := range []string{"features False PLAIN LOGIN", "refused 554", "login 235", "sent {}"} {
		if !strings.Contains(out, want) {
			t.Errorf("smtplib output lacks %q:\n%s", want, out)
		}
	}
	if envs := s.queue(); len(envs) != 1 || envs[0].Proto != "ESMTPSA" || envs[0].User != "bob" {
		t.Errorf("queued %+v", envs)
	}
}

// Started as root, smtpd binds, makes the queue owned by mail_owner and
// becomes that user for good; mail still goes into the queue.
func TestSmtpdDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	owner, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir makes both 0700
	os.Chmod(dir, 0o755)
	port := freePort(t)
	s := &smtpd{port: port, log: &syncBuffer{}, system: &system{t: t, dir: dir, conf: filepath.Join(dir, "yubin.conf"),
		queueDir: filepath.Join(dir, "queue"), hostname: "mx.test.example"}}
	os.WriteFile(filepath.Join(dir, "aliases"), []byte("bob: root\n"), 0o644)
	os.WriteFile(s.conf, []byte(strings.Join([]string{
		"hostname = mx.test.example", "queue_dir = " + s.queueDir, "aliases = " + filepath.Join(dir, "aliases"),
		fmt.Sprintf("smtp_listen = 127.0.0.1:%d", port), "submission_listen =", "mail_owner = nobody", "",
	}, "\n")), 0o644)
	s.start()
	s.normalSession() // served after the drop: smtpd binds, drops, then serves
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Uid:\t%s\t%s\t%s\t%s\n", owner.Uid, owner.Uid, owner.Uid, owner.Uid)
	if !strings.Contains(string(status), want) {
		t.Errorf("smtpd runs as\n%s, want %q", status, want)
	}
	if fi, err := os.Stat(filepath.Join(s.queueDir, "msg")); err != nil || fmt.Sprint(fi.Sys().(*syscall.Stat_t).Uid) != owner.Uid {
		t.Errorf("msg/ not owned by nobody: %v", err)
	}
}

// systemd socket activation (Accept=no): systemd-socket-activate holds the
// ports and starts smtpd with them (LISTEN_FDS); the socket on
// submission_listen's port gets the submission rules.
func TestSmtpdSystemdSockets(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate is not installed (package systemd)")
	}
	port, subPort := freePort(t), freePort(t)
	users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(users, []byte("bob:{PLAIN}secret\n"), 0o600)
	sys := newSystem(t, fmt.Sprintf("smtp_listen = 127.0.0.1:%d", port), fmt.Sprintf("submission_listen = 127.0.0.1:%d", subPort),
		"users_file = "+users, "mail_owner = "+currentUser(t))
	os.WriteFile(filepath.Join(sys.dir, "aliases"), []byte("postmaster: bob\n"), 0o644)
	s := &smtpd{system: sys, port: port, subPort: subPort, log: &syncBuffer{}}
	s.cmd = exec.Command(activate, "-l", fmt.Sprintf("127.0.0.1:%d", port), "-l", fmt.Sprintf("127.0.0.1:%d", subPort),
		"-E", "YUBIN_CONF="+sys.conf, filepath.Join(binDir, "smtpd"), "--no-runner")
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
		if t.Failed() {
			t.Logf("log:\n%s", s.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", subPort)); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens: %s", s.log.String())
		}
	}
	// The first connection started smtpd; the next ones are its.
	c := s.dial(subPort)
	c.expect("EHLO client.example", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<carol@elsewhere.example>", "554 5.7.1 ") // submission: AUTH first
	c.expect("AUTH PLAIN AGJvYgBzZWNyZXQ=", "235 ")
	c.expect("RCPT TO:<carol@elsewhere.example>", "250 ")
	c.expect("QUIT", "221 ")
	c = s.dial(port)
	c.expect("EHLO client.example", "250 ")
	c.expect("AUTH PLAIN AGJvYgBzZWNyZXQ=", "503 5.5.1 ") // port 25: no AUTH
	s.normalSession()
}
