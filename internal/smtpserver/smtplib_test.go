package smtpserver

import (
	"os/exec"
	"strings"
	"testing"
)

// Python's smtplib, a client nobody here wrote, sends a message with
// sendmail(): EHLO, SIZE, dot-stuffing and CRLF are its own.
const smtplibScript = `
import smtplib, sys
msg = ("From: a@example.org\n"
       "To: b@local.test\n"
       "Subject: smtplib\n"
       "\n"
       ".starts with a dot\n"
       "..two\n"
       "last line\n")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="python.test") as s:
    refused = s.sendmail("a@example.org", ["b@local.test", "c@local.test"], msg,
                         mail_options=["BODY=8BITMIME"],
                         rcpt_options=["NOTIFY=SUCCESS,FAILURE"])
    print("refused", refused)
`

func TestSmtplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	q := newQueue(t)
	addr := startServer(t, testOptions(q))
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	out, err := exec.Command(python, "-c", smtplibScript, port).CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	if string(out) != "refused {}\n" {
		t.Errorf("smtplib printed %q", out)
	}

	ids, err := q.IDs()
	if err != nil || len(ids) != 1 {
		t.Fatalf("queue holds %v (%v), want one message", ids, err)
	}
	env, msg := readMessage(t, q, ids[0])
	want := "Received: from python.test (unknown [127.0.0.1])\n" +
		"\tby mx.test (yubin) with ESMTP id " + ids[0] + ";\n" +
		"\t" + testDate + "\n" +
		"From: a@example.org\n" +
		"To: b@local.test\n" +
		"Subject: smtplib\n" +
		"\n" +
		".starts with a dot\n" +
		"..two\n" +
		"last line\n"
	if msg != want {
		t.Errorf("message\n%q\nwant\n%q", msg, want)
	}
	if env.From != "a@example.org" || env.Helo != "python.test" || env.Proto != "ESMTP" || env.Body != "8BITMIME" ||
		len(env.Recipients) != 2 || env.Recipients[1].Addr != "c@local.test" || env.Recipients[1].Notify != "SUCCESS,FAILURE" {
		t.Errorf("envelope %+v", env)
	}
}
