package test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// smtplibOverStdio drives `sendmail ARGS` as an SMTP server on its stdin and
// stdout with Python's smtplib over a socket pair, as Alpine and symfony/mailer
// drive sendmail -bs, and prints the greeting, each reply code and sendmail's
// exit status.
const smtplibOverStdio = `
import smtplib, socket, subprocess, sys
sendmail = sys.argv[1]
a, b = socket.socketpair()
p = subprocess.Popen([sendmail] + sys.argv[2:], stdin=b.fileno(), stdout=b.fileno())
b.close()
s = smtplib.SMTP()
s.sock = a
code, greeting = s.getreply()
print("greeting", code, greeting.decode())
print("ehlo", s.ehlo("client.example")[0])
print("esmtp", " ".join(sorted(s.esmtp_features)))
refused = s.sendmail("alice@example.org", ["bob@example.org", "carol@example.net"],
    "From: alice@example.org\r\nSubject: over -bs\r\n\r\nhello\r\n..dot\r\n")  # smtplib stuffs the dots itself
print("refused", refused)
print("quit", s.quit()[0])
print("exit", p.wait())
`

func TestSendmailBsWithSmtplib(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	for _, args := range [][]string{{"-bs", "-odb", "-oem"}, {"-bs"}} { // Alpine, symfony/mailer
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			s := newSystem(t)
			cmd := s.command("python3", append([]string{"-c", smtplibOverStdio, filepath.Join(binDir, "sendmail")}, args...)...)
			cmd.Path, _ = exec.LookPath("python3")
			r := runCmd(t, cmd)
			if r.code != 0 {
				t.Fatalf("smtplib session failed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			for _, want := range []string{"greeting 220 " + s.hostname, "ehlo 250", "refused {}", "quit 221", "exit 0"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("session output lacks %q:\n%s", want, r.stdout)
				}
			}
			if !strings.Contains(r.stdout, "pipelining") || !strings.Contains(r.stdout, "8bitmime") {
				t.Errorf("EHLO lacks PIPELINING or 8BITMIME:\n%s", r.stdout)
			}
			envs := s.queue()
			if len(envs) != 1 {
				t.Fatalf("queue holds %d messages, want 1", len(envs))
			}
			env := envs[0]
			if env.From != "alice@example.org" || strings.Join(rcpts(env), " ") != "bob@example.org carol@example.net" || env.Helo != "client.example" {
				t.Errorf("envelope from <%s> to %v helo %q", env.From, rcpts(env), env.Helo)
			}
			raw := s.message(env.ID)
			if !strings.HasPrefix(raw, "Received: ") || !strings.Contains(raw, env.ID) || !strings.HasSuffix(raw, "\n\nhello\n..dot\n") {
				t.Errorf("queued message:\n%s", raw)
			}
		})
	}
}

// smtplibClient connects to 127.0.0.1:PORT and sends one message to a local
// and a remote recipient, printing what the server answered.
const smtplibClient = `
import smtplib, sys
s = smtplib.SMTP(local_hostname="client.example")
code, greeting = s.connect("127.0.0.1", int(sys.argv[1]))
print("greeting", code, greeting.decode())
try:
    refused = s.sendmail("alice@example.org", ["bob@mx.test.example", "carol@elsewhere.example"],
        "Subject: inetd\r\n\r\nhello\r\n")
    print("refused", refused)
except smtplib.SMTPRecipientsRefused as e:
    print("all refused", e.recipients)
print("quit", s.quit()[0])
`

// smtpd -i on a TCP connection, as inetd starts it: a network client, so
// only local domains are accepted (no open relay) and the client's address
// is recorded.
func TestSmtpdInetdSession(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	// Loopback outside relay_networks, and bob an alias: smtpd checks
	// local recipients (smtpd_test.go has the rest of the policy).
	s := newSystem(t, "relay_networks = 192.0.2.0/24")
	if err := os.WriteFile(filepath.Join(s.dir, "aliases"), []byte("bob: root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := exec.Command("python3", "-c", smtplibClient, fmt.Sprint(l.Addr().(*net.TCPAddr).Port))
	var out strings.Builder
	client.Stdout, client.Stderr = &out, &out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := conn.(*net.TCPConn).File()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	smtpd := s.command("smtpd", "-i")
	smtpd.Stdin, smtpd.Stdout = f, f
	var stderr strings.Builder
	smtpd.Stderr = &stderr
	if err := smtpd.Run(); err != nil {
		t.Errorf("smtpd -i: %v %s", err, stderr.String())
	}
	f.Close()
	if err := client.Wait(); err != nil {
		t.Fatalf("client: %v\n%s", err, out.String())
	}
	for _, want := range []string{"greeting 220 " + s.hostname, "refused {'carol@elsewhere.example': (554", "quit 221"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("client output lacks %q:\n%s", want, out.String())
		}
	}
	envs := s.queue()
	if len(envs) != 1 || strings.Join(rcpts(envs[0]), " ") != "bob@mx.test.example" || envs[0].Client != "127.0.0.1" || envs[0].Proto != "ESMTP" {
		t.Fatalf("queued: %+v", envs)
	}
}
