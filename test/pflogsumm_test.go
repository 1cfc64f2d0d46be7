package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"yubin/internal/relay/relaytest"
)

// A day of mail through the real programs, logged to maillog_file, read by
// Debian's pflogsumm (--syslog-name=yubin): its Grand Totals and its
// per-sender and per-recipient counts are what the test did.
//
//	m1  smtpd  alice@example.org → bob (local)
//	m2  smtpd  alice@example.org → carol@elsewhere.example (relayed), bob;
//	           nobody@mx.test.example refused at RCPT (550)
//	m3  smtpd  bob → defer@elsewhere.example (451), reject@elsewhere.example
//	           (550: a bounce to bob, delivered by the next queue run)
//	m4  sendmail (root) → bob
//	m5  sendmail -bs, alice@example.org → bob
func TestPflogsummCountsADay(t *testing.T) {
	pflogsumm := lookPflogsumm(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	dir := t.TempDir()
	maillog := filepath.Join(dir, "maillog")
	port := relaytest.FreePort(t)
	dns := relaytest.NewDNS(t, "elsewhere.example. MX 10 mx.elsewhere.example.", "mx.elsewhere.example. A 127.0.0.2")
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	sink.SetRcpt(func(to string) error {
		switch to {
		case "defer@elsewhere.example":
			return relaytest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "try again later")
		case "reject@elsewhere.example":
			return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}
		return nil
	})
	s := startSmtpd(t, "maillog_file = "+maillog, "mail_dir = "+filepath.Join(dir, "mail", "%u", "Maildir"),
		"dns_servers = "+dns.Addr, fmt.Sprintf("remote_smtp_port = %d", port),
		"relay_connect_timeout = 2s", "relay_timeout = 3s")

	out := runPython(t, `
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.example")
print("m1", s.sendmail("alice@example.org", ["bob@mx.test.example"], "Message-ID: <m1@client.example>\r\nSubject: one\r\n\r\none\r\n"))
print("m2", s.sendmail("alice@example.org", ["carol@elsewhere.example", "bob@mx.test.example", "nobody@mx.test.example"], "Subject: two\r\n\r\ntwo\r\n"))
print("m3", s.sendmail("bob@mx.test.example", ["defer@elsewhere.example", "reject@elsewhere.example"], "Subject: three\r\n\r\nthree\r\n"))
s.quit()
`, fmt.Sprint(s.port))
	if want := "m1 {}\nm2 {'nobody@mx.test.example': (550, "; !strings.HasPrefix(out, want) || !strings.Contains(out, "\nm3 {}\n") {
		t.Fatalf("smtplib: %s", out)
	}
	if r := s.run("Subject: four\n\nfour\n", "sendmail", "bob"); r.code != 0 {
		t.Fatalf("sendmail: exit %d %s", r.code, r.stderr)
	}
	session := "EHLO ws.test\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@mx.test.example>\r\nDATA\r\n" +
		"Subject: five\r\n\r\nfive\r\n.\r\nQUIT\r\n"
	if r := s.run(session, "sendmail", "-bs"); r.code != 0 || strings.Count(r.stdout, "\r\n250 ") != 4 {
		t.Fatalf("sendmail -bs: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Without a compiled aliases file the runner warns at every message.
	if r := s.run("", "newaliases"); r.code != 0 {
		t.Fatalf("newaliases: exit %d %s", r.code, r.stderr)
	}

	// The sizes pflogsumm adds up are those of the queued messages.
	size := map[string]int64{} // by Subject
	for _, env := range s.queue() {
		subject := regexp.MustCompile(`(?m)^Subject: (\w+)$`).FindStringSubmatch(s.message(env.ID))
		if subject == nil {
			t.Fatalf("message %s has no Subject", env.ID)
		}
		size[subject[1]] = env.Size
	}
	if len(size) != 5 {
		t.Fatalf("queued %v, want the five messages", size)
	}

	// The first queue run delivers, relays, defers and bounces; the second
	// delivers the bounce (the deferred recipient is not due yet).
	if r := s.run("", "runner"); r.code != 0 || r.stderr != "" {
		t.Fatalf("runner: exit %d %s", r.code, r.stderr)
	}
	var bounceSize int64
	for _, env := range s.queue() {
		if env.From == "" {
			bounceSize = env.Size
		}
	}
	if bounceSize == 0 {
		t.Fatalf("no bounce queued: %+v", s.queue())
	}
	if r := s.run("", "runner"); r.code != 0 || r.stderr != "" {
		t.Fatalf("runner: exit %d %s", r.code, r.stderr)
	}
	if n := maildirCount(t, filepath.Join(dir, "mail"), "bob"); n != 5 {
		t.Errorf("bob has %d messages, want 5", n)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].To[0] != "carol@elsewhere.example" {
		t.Errorf("sink got %+v", msgs)
	}
	if l := s.log.String(); l != "" {
		t.Errorf("smtpd logged on stderr despite maillog_file:\n%s", l)
	}

	data, err := os.ReadFile(maillog)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), "\n") {
		t.Errorf("the log does not end with a newline")
	}
	// Every line in syslog's format; Postfix's lines (those that are not
	// key=value) counted by the name in their tag.
	names := map[string]int{}
	syslogLine := regexp.MustCompile(`^[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \S+ yubin/(\w+)\[\d+\]: (\S+)`)
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		m := syslogLine.FindStringSubmatch(l)
		switch {
		case m == nil:
			t.Errorf("not a syslog line: %q", l)
		case !strings.Contains(m[2], "="):
			names[m[1]]++
		}
	}
	// 3 client= and 1 reject; 2 uid= (sendmail and sendmail -bs); the
	// Message-ID of m1 and of m4 (sendmail adds one); 6 "queue active" and
	// 5 removed; relayed 1 sent, 1 deferred, 1 bounced; 5 local
	// deliveries; 1 notification.
	for name, n := range map[string]int{"smtpd": 4, "pickup": 2, "cleanup": 2, "qmgr": 11, "smtp": 3, "local": 5, "bounce": 1} {
		if names[name] != n {
			t.Errorf("%d lines of yubin/%s, want %d", names[name], name, n)
		}
	}
	if !regexp.MustCompile(` yubin/cleanup\[\d+\]: \w+: message-id=<m1@client\.example>\n`).Match(data) {
		t.Errorf("no message-id line for m1")
	}
	if t.Failed() {
		t.Fatalf("log:\n%s", data)
	}

	cmd := exec.Command(pflogsumm, "--syslog-name=yubin", maillog)
	sum, err := cmd.Output()
	if err != nil {
		t.Fatalf("pflogsumm: %v", err)
	}
	report := string(sum)
	received := size["one"] + size["two"] + size["three"] + size["four"] + size["five"]
	delivered := size["one"] + 2*size["two"] + size["four"] + size["five"] + bounceSize
	line := func(n int64, what string) string { return fmt.Sprintf(" %6d   %s\n", n, what) }
	totals := "Grand Totals\n------------\nmessages\n\n" +
		line(5, "received") + // m1 m2 m3 by smtpd, m4 m5 by pickup; not the bounce
		line(6, "delivered") + // bob ×4 and the bounce to him, carol
		line(0, "forwarded") +
		line(1, "deferred  (1  deferrals)") +
		line(1, "bounced") +
		line(1, "rejected (14%)") + // 1 of 6 delivered + 1 rejected
		line(0, "reject warnings") +
		line(0, "held") +
		line(0, "discarded (0%)") +
		"\n" +
		line(received, "bytes received") +
		line(delivered, "bytes delivered") +
		line(3, "senders") + // alice@example.org, bob@ and root@mx.test.example
		line(2, "sending hosts/domains") +
		line(2, "recipients") + // bob@mx.test.example, carol@elsewhere.example
		line(2, "recipient hosts/domains")
	if !strings.Contains(report, totals) {
		t.Errorf("pflogsumm's Grand Totals, want\n%s\nin\n%s", totals, report)
	}
	for _, want := range []string{
		"\nmessage deferral detail\n-----------------------\n  smtp (total: 1)\n",
		"\nmessage bounce detail (by relay)\n--------------------------------\n  mx.elsewhere.example[127.0.0.2]:",
		"\nmessage reject detail\n---------------------\n  RCPT\n",
		"\nWarnings: none\n",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("pflogsumm's report lacks %q:\n%s", want, report)
		}
	}
	for title, want := range map[string]map[string]string{
		"Senders by message count": {
			"alice@example.org": "3", "bob@mx.test.example": "1", "root@mx.test.example": "1"},
		"Recipients by message count": {
			"bob@mx.test.example": "5", "carol@elsewhere.example": "1"},
	} {
		got := section(report, title)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v\n%s", title, got, want, report)
		}
	}
}

// section reads the "count address" lines under a title of pflogsumm's
// report.
func section(report, title string) map[string]string {
	_, rest, ok := strings.Cut(report, "\n"+title+"\n"+strings.Repeat("-", len(title))+"\n")
	if !ok {
		return nil
	}
	rest, _, _ = strings.Cut(rest, "\n\n")
	counts := map[string]string{}
	for _, l := range strings.Split(rest, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			counts[f[1]] = f[0]
		}
	}
	return counts
}

// lookPflogsumm finds Debian's pflogsumm (in /usr/sbin), which
// scripts/test-deps installs; only a test run without root may lack it.
func lookPflogsumm(t *testing.T) string {
	for _, p := range []string{"pflogsumm", "/usr/sbin/pflogsumm"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("pflogsumm is not installed (scripts/test-deps installs it as root)")
	}
	t.Fatal("pflogsumm is not installed: run scripts/test-deps")
	return ""
}
