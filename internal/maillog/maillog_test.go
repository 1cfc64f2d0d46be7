package maillog

import (
	"bytes"
	"regexp"
	"syscall"
	"testing"
)

func TestQueuedLine(t *testing.T) {
	var buf bytes.Buffer
	SetOutput(&buf)
	defer SetOutput(nil)
	Queued("0ABC", "a@x", 2, 4312, "127.0.0.1", "")
	Queued("0ABD", "", 1, 10, "", `Bob "the" Builder`)
	want := "id=0ABC event=queued from=<a@x> nrcpt=2 size=4312 client=127.0.0.1\n" +
		`id=0ABD event=queued from=<> nrcpt=1 size=10 user="Bob \"the\" Builder"` + "\n"
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
	SetOutput(&syslogWriter{fd: fds[0], prefix: "<22>", tag: "yubin/test[7]: "})
	defer SetOutput(nil)
	Queued("0ABC", "a@x", 1, 10, "", "root")
	buf := make([]byte, 512)
	n, err := syscall.Read(fds[1], buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	re := regexp.MustCompile(`^<22>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d yubin/test\[7\]: id=0ABC event=queued from=<a@x> nrcpt=1 size=10 user=root$`)
	if !re.MatchString(got) {
		t.Errorf("datagram %q", got)
	}
}
