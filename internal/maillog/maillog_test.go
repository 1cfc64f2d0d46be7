package maillog

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The lines about one message, in the order its story is told, each in
// the syntax and under the Postfix name pflogsumm and its kin expect.
func TestPostfixLines(t *testing.T) {
	var buf bytes.Buffer
	SetOutput(&buf)
	defer SetOutput(nil)
	Received("0ABC", "", "192.0.2.7", "", "")
	Received("0ABD", "client.example", "192.0.2.8", "PLAIN", "bob")
	Pickup("0ABE", 1000, "alice@here")
	MessageID("0ABE", "<1@here>")
	MessageID("0ABC", "")
	Reject("RCPT", "", "192.0.2.7", "550 5.1.1 no such user", "ESMTP", "a@x", "nobody@here", "c.example")
	Reject("DATA", "", "192.0.2.7", "552 5.3.4 too big", "SMTP", "", "", "c.example")
	Reject("CONNECT", "", "192.0.2.9", "421 4.7.0 too many connections", "SMTP", "", "", "")
	Active("0ABC", "", 4312, 2)
	Attempt(SMTP, "0ABC", "b@y", "b@y", "mx.y[192.0.2.1]:25", 1234*time.Millisecond, "2.0.0", "sent", "250 2.0.0 ok")
	Attempt(SMTP, "0ABC", "c@z", "", "", 5*time.Second, "4.4.1", "deferred", "connect\r\nrefused")
	Attempt(Local, "0ABC", "bob@here", "info@here", "", 0, "5.1.1", "bounced", "no such user")
	BounceQueued("0ABC", "non-delivery", "0ABF")
	BounceQueued("0ABC", "success", "0ABG")
	Removed("0ABC")
	RunnerError("0ABC", "queue notification: disk full")
	Corrupt("0ABD", "no envelope")
	want := `0ABC: client=unknown[192.0.2.7]
0ABD: client=client.example[192.0.2.8], sasl_method=PLAIN, sasl_username=bob
0ABE: uid=1000 from=<alice@here>
0ABE: message-id=<1@here>
NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 no such user; from=<a@x> to=<nobody@here> proto=ESMTP helo=<c.example>
NOQUEUE: reject: DATA from unknown[192.0.2.7]: 552 5.3.4 too big; from=<> proto=SMTP helo=<c.example>
NOQUEUE: reject: CONNECT from unknown[192.0.2.9]: 421 4.7.0 too many connections; proto=SMTP
0ABC: from=<>, size=4312, nrcpt=2 (queue active)
0ABC: to=<b@y>, relay=mx.y[192.0.2.1]:25, delay=1.23, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 ok)
0ABC: to=<c@z>, relay=none, delay=5, delays=0/0/0/0, dsn=4.4.1, status=deferred (connect??refused)
0ABC: to=<bob@here>, orig_to=<info@here>, relay=local, delay=0, delays=0/0/0/0, dsn=5.1.1, status=bounced (no such user)
0ABC: sender non-delivery notification: 0ABF
0ABC: sender delivery status notification: 0ABG
0ABC: removed
warning: 0ABC: queue notification: disk full
warning: 0ABD: corrupt queue file, moved to corrupt/: no envelope
`
	if buf.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestSyslogDatagram(t *testing.T) {
	// A syslog daemon of our own is not possible at /dev/log in a test;
	// the writer is checked on a socket pair instead.
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	set(&syslogSocket{fd: fds[0], pid: "7"})
	defer SetOutput(nil)
	Pickup("0ABC", 0, "root@here")
	buf := make([]byte, 512)
	n, err := syscall.Read(fds[1], buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	re := regexp.MustCompile(`^<22>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d yubin/pickup\[7\]: 0ABC: uid=0 from=<root@here>$`)
	if !re.MatchString(got) {
		t.Errorf("datagram %q", got)
	}
}

// maillog_file gets syslog's line format, each Postfix line under its
// Postfix name and the rest under the program's, appended to what is
// there.
func TestLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "maillog")
	if err := os.WriteFile(path, []byte("an older line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	Open("runner", path)
	defer SetOutput(nil)
	Active("0ABC", "a@x", 10, 1)
	RunnerError("0ABC", "no aliases")
	RunnerError("", "aliases: line 3: bad")
	Auth("smtp", "bob", "PLAIN", "ok", "", "192.0.2.7", 0)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) != 6 || lines[0] != "an older line" || lines[5] != "" {
		t.Fatalf("file:\n%s", data)
	}
	pid := regexp.QuoteMeta("[" + strconv.Itoa(os.Getpid()) + "]: ")
	stamp := `^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d [^ .]+ `
	for i, want := range []string{
		stamp + `yubin/qmgr` + pid + `0ABC: from=<a@x>, size=10, nrcpt=1 \(queue active\)$`,
		stamp + `yubin/runner` + pid + `warning: 0ABC: no aliases$`,
		stamp + `yubin/runner` + pid + `warning: aliases: line 3: bad$`,
		stamp + `yubin/runner` + pid + `event=auth proto=smtp user=bob mech=PLAIN result=ok failures=0 client=192\.0\.2\.7$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("line %d %q, want %s", i+1, lines[i+1], want)
		}
	}
}

// A maillog_file that cannot be opened leaves the log where it was (here:
// no /dev/log in the test's world, the buffer), starting with a warning.
func TestLogFileFallback(t *testing.T) {
	if _, err := os.Stat("/dev/log"); err == nil {
		t.Skip("/dev/log exists: the fallback would go to the real syslog")
	}
	var buf bytes.Buffer
	SetOutput(&buf)
	defer SetOutput(nil)
	path := filepath.Join(t.TempDir(), "no", "maillog")
	Open("smtpd", path)
	Removed("0ABC")
	want := "warning: maillog_file: open " + path + ": no such file or directory; logging to syslog\n0ABC: removed\n"
	if buf.String() != want {
		t.Errorf("log %q, want %q", buf.String(), want)
	}
}
