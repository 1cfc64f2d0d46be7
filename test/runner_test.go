package test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/queue"
	"yubin/internal/relay/relaytest"
)

// relaySystem is a system with virtual users owned by the current user (so
// the runner runs unprivileged), a DNS server and a remote sink for
// there.test.
func relaySystem(t *testing.T, extra ...string) (*system, *relaytest.Sink, string) {
	t.Helper()
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	usersFile := filepath.Join(dir, "users")
	os.WriteFile(usersFile, []byte("alice:{PLAIN}x\nbob:{PLAIN}x\n"), 0o600)
	port := relaytest.FreePort(t)
	dns := relaytest.NewDNS(t, "there.test. MX 10 mx.there.test.", "mx.there.test. A 127.0.0.2")
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	mail := filepath.Join(dir, "mail")
	s := newSystem(t, append([]string{"users_file = " + usersFile, "mail_owner = " + me.Username,
		"mail_dir = " + filepath.Join(mail, "%u", "Maildir"),
		"dns_servers = " + dns.Addr, fmt.Sprintf("remote_smtp_port = %d", port),
		"relay_connect_timeout = 2s", "relay_timeout = 3s", "min_backoff_time = 1s", "max_backoff_time = 2s"}, extra...)...)
	os.WriteFile(filepath.Join(s.dir, "aliases"), []byte("team: alice, bob\nfar: carol@there.test\n"), 0o644)
	return s, sink, mail
}

func maildirCount(t *testing.T, mail, user string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(mail, user, "Maildir", "new", "*"))
	return len(files)
}

// sendmail → queue → sendmail -q (the runner) → deliver → Maildir, with an
// alias to two users and one to a remote address.
func TestSendmailQueueRunToMaildir(t *testing.T) {
	s, sink, mail := relaySystem(t)
	msg := "Subject: hello\n\nbody\n"
	if r := s.run(msg, "sendmail", "-i", "team", "far"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	if len(s.queue()) != 1 {
		t.Fatal("not queued")
	}
	if r := s.run("", "sendmail", "-q"); r.code != 0 {
		t.Fatalf("sendmail -q: %d %s", r.code, r.stderr)
	}
	if a, b := maildirCount(t, mail, "alice"), maildirCount(t, mail, "bob"); a != 1 || b != 1 {
		t.Fatalf("alice has %d, bob %d messages", a, b)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || msgs[0].To[0] != "carol@there.test" {
		t.Fatalf("sink: %+v", msgs)
	}
	if q := s.queue(); len(q) != 0 {
		t.Fatalf("queue not empty: %+v", q[0].Recipients[0])
	}
}

// An unknown local user bounces back to the local sender's mailbox.
func TestUnknownLocalUserBounces(t *testing.T) {
	s, _, mail := relaySystem(t)
	if r := s.run("Subject: x\n\nbody\n", "sendmail", "-f", "alice@"+s.hostname, "nosuchuser"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	s.run("", "sendmail", "-q")
	s.run("", "sendmail", "-q") // delivers the bounce
	files, _ := filepath.Glob(filepath.Join(mail, "alice", "Maildir", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("alice has %d messages, want the bounce", len(files))
	}
	b, _ := os.ReadFile(files[0])
	for _, want := range []string{"Return-Path: <>", "MAILER-DAEMON", "Final-Recipient: rfc822; nosuchuser@" + s.hostname, "Status: 5.1.1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("bounce lacks %q:\n%s", want, b)
		}
	}
}

// The queue daemon (sendmail -q1h) delivers a new message at once: sendmail
// wakes it.
func TestQueueDaemonWakeUp(t *testing.T) {
	s, _, mail := relaySystem(t)
	d := s.command("sendmail", "-q1h")
	var stderr strings.Builder
	d.Stderr = &stderr
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Signal(syscall.SIGTERM); d.Wait() })
	waitFor(t, 5*time.Second, func() bool { _, err := os.Stat(filepath.Join(s.queueDir, "wake")); return err == nil })
	if r := s.run("Subject: x\n\nbody\n", "sendmail", "alice"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	waitFor(t, 5*time.Second, func() bool { return maildirCount(t, mail, "alice") == 1 })
	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "status=sent") {
		t.Errorf("log has no delivery line:\n%s", stderr.String())
	}
}

// kill -9 of the runner in the middle of an SMTP transaction loses
// nothing: a new run delivers the message (the interrupted transaction
// never completed, so the sink holds it once).
func TestRunnerKilledMidTransaction(t *testing.T) {
	s, sink, _ := relaySystem(t)
	inData := make(chan struct{}, 1)
	release := make(chan struct{})
	var first sync.Once
	sink.Data = func(*relaytest.Message) error {
		stall := false
		first.Do(func() { stall = true })
		if stall {
			inData <- struct{}{}
			<-release
			return fmt.Errorf("interrupted")
		}
		return nil
	}
	defer close(release)
	s.run("Subject: x\n\nbody\n", "sendmail", "carol@there.test")
	r := s.command("sendmail", "-q")
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-inData:
	case <-time.After(10 * time.Second):
		t.Fatal("runner never reached DATA")
	}
	r.Process.Kill()
	r.Wait()
	if q := s.queue(); len(q) != 1 {
		t.Fatalf("queue after kill: %d messages", len(q))
	}
	if res := s.run("", "sendmail", "-q"); res.code != 0 {
		t.Fatalf("second run: %d %s", res.code, res.stderr)
	}
	if len(sink.Messages()) != 1 || len(s.queue()) != 0 {
		t.Fatalf("after restart: sink %d, queue %d", len(sink.Messages()), len(s.queue()))
	}
}

// Queue operations: hold keeps a message from sendmail -q, release lets it
// go; mailq marks held messages with '!'.
func TestHoldAndRelease(t *testing.T) {
	s, _, mail := relaySystem(t)
	s.run("Subject: x\n\nbody\n", "sendmail", "alice")
	id := s.queue()[0].ID
	if r := s.run("", "mailq", "--hold", id); r.code != 0 {
		t.Fatalf("mailq --hold: %d %s", r.code, r.stderr)
	}
	if r := s.run("", "mailq"); !strings.Contains(r.stdout, id+"!") {
		t.Errorf("mailq does not show the hold:\n%s", r.stdout)
	}
	s.run("", "sendmail", "-q")
	if maildirCount(t, mail, "alice") != 0 {
		t.Fatal("held message delivered")
	}
	if r := s.run("", "mailq", "--release", id); r.code != 0 {
		t.Fatalf("mailq --release: %d %s", r.code, r.stderr)
	}
	s.run("", "sendmail", "-q")
	if maildirCount(t, mail, "alice") != 1 {
		t.Fatal("released message not delivered")
	}
}

func waitFor(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// smtpd (here its one-session mode, as sendmail -bs runs it) → queue →
// runner → the remote sink.
func TestSMTPSessionRelayedToSink(t *testing.T) {
	s, sink, _ := relaySystem(t)
	session := "EHLO client.test\r\nMAIL FROM:<alice@" + s.hostname + ">\r\nRCPT TO:<carol@there.test>\r\nDATA\r\n" +
		"Subject: via smtp\r\n\r\nhello\r\n.\r\nQUIT\r\n"
	if r := s.run(session, "sendmail", "-bs"); r.code != 0 || !strings.Contains(r.stdout, "250") {
		t.Fatalf("sendmail -bs: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if len(s.queue()) != 1 {
		t.Fatalf("queue has %d messages after the session", len(s.queue()))
	}
	s.run("", "sendmail", "-q")
	msgs := sink.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: via smtp") || msgs[0].From != "alice@"+s.hostname {
		t.Fatalf("sink: %+v", msgs)
	}
}

// smtpd starts the queue runner beside itself: mail received is delivered
// at once; a second runner daemon on the same queue refuses to start;
// SIGHUP reloads the runner too (it starts again and goes on delivering);
// SIGTERM stops both.
func TestSmtpdStartsRunner(t *testing.T) {
	port := freePort(t)
	sys, _, mail := relaySystem(t, fmt.Sprintf("smtp_listen = 127.0.0.1:%d", port), "submission_listen =")
	s := &smtpd{system: sys, port: port, log: &syncBuffer{}, runner: true}
	s.start()
	send := func(n int) {
		c := s.dial(port)
		c.expect("EHLO client.example", "250 ")
		c.sendMail("someone@example.org", "alice@"+s.hostname, fmt.Sprintf("Subject: %d\r\n\r\nhello\r\n.\r\n", n))
		c.expect("QUIT", "221 ")
		waitFor(t, 10*time.Second, func() bool { return maildirCount(t, mail, "alice") == n })
	}
	send(1)

	r := s.run("", "runner", "--interval", "1m")
	if r.code != 75 || !strings.Contains(r.stderr, "another runner daemon serves this queue") {
		t.Errorf("second runner daemon: exit %d, %q", r.code, r.stderr)
	}

	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(s.log.String(), "event=reload proto=runner result=ok") })
	send(2)

	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("smtpd exit: %v\n%s", err, s.log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("smtpd did not stop\n%s", s.log.String())
	}
	// The runner has stopped too: its wake socket is gone.
	waitFor(t, 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(s.queueDir, "wake"))
		return os.IsNotExist(err)
	})
}

// Mail deferred past delay_warning_time warns its sender once, whatever
// number of sendmail -q runs follow: the warning lands in the sender's
// Maildir, and Python's email package reads it as an RFC 3464 report of a
// delay (Action: delayed, Status 4.x.x) with the original header only.
func TestDelayWarningReachesSender(t *testing.T) {
	s, sink, mail := relaySystem(t, "delay_warning_time = 1s")
	sink.SetRcpt(func(string) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 7, 1}, "greylisted, try again") })
	if r := s.run("Subject: slow one\n\nbody\n", "sendmail", "-f", "alice@"+s.hostname, "carol@there.test"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	for range 4 { // the first queues the warning, the second delivers it
		if r := s.run("", "sendmail", "-q"); r.code != 0 {
			t.Fatalf("sendmail -q: %d %s", r.code, r.stderr)
		}
	}
	files, _ := filepath.Glob(filepath.Join(mail, "alice", "Maildir", "new", "*"))
	if len(files) != 1 {
		t.Fatalf("alice has %d messages, want one warning", len(files))
	}
	if q := s.queue(); len(q) != 1 || q[0].Recipients[0].State != queue.Deferred || q[0].Recipients[0].Warned.IsZero() {
		t.Fatalf("queue: want the deferred, warned message only, got %d messages", len(q))
	}
	if r := s.run("", "mailq", "--json"); !strings.Contains(r.stdout, `451 4.7.1 greylisted, try again (in reply to RCPT TO command)", "delay_warned": `) {
		t.Errorf("mailq --json does not show the warning: %d %s%s", r.code, r.stdout, r.stderr)
	}
	py := `
import sys, email
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status", m.get_param("report-type")
assert m["Return-Path"] == "<>", m["Return-Path"]
text, status, original = m.get_payload()
assert status.get_content_type() == "message/delivery-status"
rcpt = status.get_payload()[1]
assert rcpt["Status"].startswith("4."), rcpt["Status"]
assert rcpt["Will-Retry-Until"], rcpt
assert original.get_content_type() == "text/rfc822-headers", original.get_content_type()
assert "Subject: slow one" in original.get_payload() and "body" not in original.get_payload()
print(rcpt["Final-Recipient"], "|", rcpt["Action"], "|", rcpt["Status"])
`
	out, err := exec.Command("python3", "-c", py, files[0]).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(files[0])
		t.Fatalf("python: %v\n%s\n%s", err, out, b)
	}
	if got, want := string(out), "rfc822; carol@there.test | delayed | 4.7.1\n"; got != want {
		t.Errorf("python read %q, want %q", got, want)
	}
}

// smtpd -flush, as Postfix's postqueue -f, makes the queue daemon attempt
// deferred mail now rather than in an hour; with no daemon listening it
// says so and exits 75 (EX_TEMPFAIL).
func TestSmtpdFlush(t *testing.T) {
	s, sink, _ := relaySystem(t, "min_backoff_time = 1h", "max_backoff_time = 1h")
	if r := s.run("", "smtpd", "-flush"); r.code != 75 || !strings.Contains(r.stderr, "no queue runner is listening") {
		t.Fatalf("smtpd -flush without a daemon: exit %d %q; want 75 and why", r.code, r.stderr)
	}
	deferFirst(sink)
	startRunnerDaemon(t, s)
	if r := s.run("Subject: x\n\nbody\n", "sendmail", "carol@there.test"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	waitFor(t, 5*time.Second, func() bool {
		q := s.queue()
		return len(q) == 1 && q[0].Recipients[0].State == queue.Deferred && !q[0].Active
	})
	if r := s.run("", "smtpd", "-flush"); r.code != 0 {
		t.Fatalf("smtpd -flush: exit %d %s", r.code, r.stderr)
	}
	waitFor(t, 5*time.Second, func() bool { return len(sink.Messages()) == 1 && len(s.queue()) == 0 })
}

// Any user may flush, as with postqueue -f: smtpd -flush run by a user who
// cannot reach the queue hands over to the setgid sendmail -q, which asks
// the daemon; with no daemon the user is told so (exit 75).
func TestUnprivilegedFlush(t *testing.T) {
	port := relaytest.FreePort(t)
	dns := relaytest.NewDNS(t, "there.test. MX 10 mx.there.test.", "mx.there.test. A 127.0.0.2")
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	s, _, _, asUser := setgidSystem(t, []string{"smtpd", "runner"}, "dns_servers = "+dns.Addr, fmt.Sprintf("remote_smtp_port = %d", port),
		"relay_connect_timeout = 2s", "min_backoff_time = 1h", "max_backoff_time = 1h")
	if r := asUser("", "", "smtpd", "-flush"); r.code != 75 || !strings.Contains(r.stderr, "no queue runner is listening") {
		t.Fatalf("smtpd -flush by a user, no daemon: exit %d %q; want 75 and why", r.code, r.stderr)
	}
	deferFirst(sink)
	if r := s.run("Subject: x\n\nbody\n", "sendmail", "carol@there.test"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	startRunnerDaemon(t, s)
	waitFor(t, 5*time.Second, func() bool {
		q := s.queue()
		return len(q) == 1 && q[0].Recipients[0].State == queue.Deferred && !q[0].Active
	})
	if r := asUser("", "", "smtpd", "-flush"); r.code != 0 {
		t.Fatalf("smtpd -flush by a user: exit %d %s", r.code, r.stderr)
	}
	waitFor(t, 5*time.Second, func() bool { return len(sink.Messages()) == 1 && len(s.queue()) == 0 })
}

// A runner killed after it queued a delay warning but before it recorded
// it loses nothing: the warning is in the queue and reaches the sender, and
// the next run warns again (a repeat is the price, never a loss); after
// that, no more warnings.
func TestDelayWarningCrashRepeatsNeverLoses(t *testing.T) {
	s, sink, mail := relaySystem(t, "delay_warning_time = 1s")
	sink.SetRcpt(func(string) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 7, 1}, "greylisted") })
	if r := s.run("Subject: slow one\n\nbody\n", "sendmail", "-f", "alice@"+s.hostname, "carol@there.test"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	cmd := s.command("sendmail", "-q")
	cmd.Env = append(cmd.Env, "YUBIN_TEST_CRASH_AT=committed") // the warning's commit
	if r := runCmd(t, cmd); r.code != -1 {
		t.Fatalf("the runner was not killed: exit %d %s", r.code, r.stderr)
	}
	q := s.queue()
	if len(q) != 2 || q[0].Recipients[0].Addr != "carol@there.test" || !q[0].Recipients[0].Warned.IsZero() || q[1].From != "" {
		t.Fatalf("after the crash: want the message, not marked warned, and its warning; got %d messages", len(q))
	}
	for range 4 {
		if r := s.run("", "sendmail", "-q"); r.code != 0 {
			t.Fatalf("sendmail -q: %d %s", r.code, r.stderr)
		}
	}
	if n := maildirCount(t, mail, "alice"); n != 2 {
		t.Fatalf("alice has %d warnings, want 2 (the one queued before the crash, and its repeat)", n)
	}
	if q := s.queue(); len(q) != 1 || q[0].Recipients[0].Warned.IsZero() {
		t.Fatalf("want the warned message alone in the queue, got %d messages", len(q))
	}
}

// deferFirst makes sink answer 451 to the first RCPT and accept the rest.
func deferFirst(sink *relaytest.Sink) {
	var calls atomic.Int32
	sink.SetRcpt(func(string) error {
		if calls.Add(1) == 1 {
			return relaytest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "not now")
		}
		return nil
	})
}

// startRunnerDaemon runs `runner --interval 1h` on s until the test ends,
// once it listens for wake-ups.
func startRunnerDaemon(t *testing.T, s *system) {
	t.Helper()
	d := s.command("runner", "--interval", "1h")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Signal(syscall.SIGTERM); d.Wait() })
	waitFor(t, 5*time.Second, func() bool { _, err := os.Stat(filepath.Join(s.queueDir, "wake")); return err == nil })
}

// smtpd's runner waits while another runner daemon still serves the queue
// (the runner of the smtpd before, finishing its deliveries) and takes
// over once it stops; a second runner started by hand is refused instead
// (TestSmtpdStartsRunner).
func TestSmtpdRunnerWaitsForThePrevious(t *testing.T) {
	port := freePort(t)
	sys, _, mail := relaySystem(t, fmt.Sprintf("smtp_listen = 127.0.0.1:%d", port), "submission_listen =")
	previous := sys.command("runner", "--interval", "1h")
	if err := previous.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { previous.Process.Kill(); previous.Wait() })
	waitFor(t, 5*time.Second, func() bool { _, err := os.Stat(filepath.Join(sys.queueDir, "wake")); return err == nil })
	s := &smtpd{system: sys, port: port, log: &syncBuffer{}, runner: true}
	s.start()
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(s.log.String(), "another runner daemon serves this queue: waiting for it to stop")
	})

	previous.Process.Signal(syscall.SIGTERM)
	if err := previous.Wait(); err != nil {
		t.Fatalf("previous runner: %v", err)
	}
	c := s.dial(port)
	c.expect("EHLO client.example", "250 ")
	c.sendMail("someone@example.org", "alice@"+s.hostname, "Subject: after\r\n\r\nhello\r\n.\r\n")
	c.expect("QUIT", "221 ")
	waitFor(t, 10*time.Second, func() bool { return maildirCount(t, mail, "alice") == 1 })
	if s.cmd.ProcessState != nil {
		t.Fatalf("smtpd stopped: %s", s.log.String())
	}
}
