package smtpserver

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"yubin/internal/queue"
)

func TestEHLOCapabilities(t *testing.T) {
	c := dial(t, startServer(t, testOptions(newQueue(t))))
	if err := c.text.PrintfLine("EHLO client.test"); err != nil {
		t.Fatal(err)
	}
	got := c.reply()
	want := []string{
		"250-Hello client.test",
		"250-PIPELINING",
		"250-8BITMIME",
		"250-ENHANCEDSTATUSCODES",
		"250-CHUNKING",
		"250-SMTPUTF8",
		"250-DSN",
		"250-SIZE 26214400",
		"250 LIMITS RCPTMAX=100",
	}
	if !slices.Equal(got, want) {
		t.Errorf("EHLO reply\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// What go-smtp answers by itself.
	c.expect("VRFY postmaster", "252 2.5.0 ")
	c.expect("EXPN staff", "502 5.5.1 ")
	c.expect("HELP", "502 5.5.1 ")
	c.expect("NOOP", "250 2.0.0 ")
	c.expect("QUIT", "221 2.0.0 ")
}

func TestMessageQueued(t *testing.T) {
	log := captureLog(t)
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<alice@example.org> BODY=8BITMIME SIZE=100 RET=HDRS ENVID=env+2B1", "250 2.0.0 ")
	c.expect("RCPT TO:<bob@local.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@local.test", "250 2.0.0 ")
	c.expect("RCPT TO:<carol@LOCAL.TEST.>", "250 2.0.0 ")
	reply := c.data("Subject: dots\r\n" +
		"\r\n" +
		"..one dot\r\n" +
		"...two dots\r\n" +
		"..\r\n" +
		"a lone\rCR stays\r\n" +
		"end\r\n" +
		".\r\n")
	id := queuedID(t, reply)
	c.expect("QUIT", "221 2.0.0 ")

	env, msg := readMessage(t, q, id)
	wantMsg := "Received: from client.test (unknown [127.0.0.1])\n" +
		"\tby mx.test (yubin) with ESMTP id " + id + ";\n" +
		"\t" + testDate + "\n" +
		"Subject: dots\n" +
		"\n" +
		".one dot\n" +
		"..two dots\n" +
		".\n" +
		"a lone\rCR stays\n" +
		"end\n"
	if msg != wantMsg {
		t.Errorf("message\n%q\nwant\n%q", msg, wantMsg)
	}
	if env.From != "alice@example.org" || env.Proto != "ESMTP" || env.Helo != "client.test" ||
		env.Client != "127.0.0.1" || env.User != "" || env.EnvID != "env+1" || env.Ret != "HDRS" ||
		env.Body != "8BITMIME" || env.SMTPUTF8 || !env.Arrival.Equal(testNow) {
		t.Errorf("envelope %+v", env)
	}
	if len(env.Recipients) != 2 {
		t.Fatalf("%d recipients, want 2", len(env.Recipients))
	}
	if r := env.Recipients[0]; r.Addr != "bob@local.test" || r.Notify != "SUCCESS,FAILURE" || r.ORCPT != "rfc822;bob+x@local.test" {
		t.Errorf("recipient 0 %+v", r)
	}
	if r := env.Recipients[1]; r.Addr != "carol@LOCAL.TEST." || r.Notify != "" || r.ORCPT != "" {
		t.Errorf("recipient 1 %+v", r)
	}
	wantLog := id + ": client=unknown[127.0.0.1]\n"
	if !strings.Contains(log.String(), "\n"+wantLog) {
		t.Errorf("log %q, want %q", log.String(), wantLog)
	}
}

func TestHELOIsSMTP(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("HELO old.test", "250 2.0.0 Hello old.test")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	id := queuedID(t, c.data("Subject: x\r\n\r\nhi\r\n.\r\n"))
	env, msg := readMessage(t, q, id)
	if env.Proto != "SMTP" || env.Helo != "old.test" {
		t.Errorf("proto %q helo %q, want SMTP old.test", env.Proto, env.Helo)
	}
	want := "Received: from old.test (unknown [127.0.0.1])\n" +
		"\tby mx.test (yubin) with SMTP id " + id + "\n" +
		"\tfor <b@local.test>; " + testDate + "\n" +
		"Subject: x\n\nhi\n"
	if msg != want {
		t.Errorf("message\n%q\nwant\n%q", msg, want)
	}
	// A later EHLO starts afresh, as ESMTP.
	c.expect("EHLO new.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	id = queuedID(t, c.data("\r\n.\r\n"))
	if env, _ := readMessage(t, q, id); env.Proto != "ESMTP" || env.Helo != "new.test" {
		t.Errorf("after EHLO: proto %q helo %q, want ESMTP new.test", env.Proto, env.Helo)
	}
}

// Every refusal leaves the session usable: the test ends with a message
// queued on the same connection.
func TestSequenceErrors(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("MAIL FROM:<a@example.org>", "503 5.5.1 Error: send HELO/EHLO first")
	c.expect("EHLO client.test", "250 ")
	c.expect("RCPT TO:<b@local.test>", "503 5.5.1 Error: need MAIL command")
	c.expect("DATA", "503 5.5.1 Error: need RCPT command")
	c.expect("ABCD", "500 5.5.2 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("DATA", "503 5.5.1 Error: need RCPT command")
	c.expect("MAIL FROM:<other@example.org>", "503 5.5.1 Error: nested MAIL command")
	c.expect("MAIL TO:<a@example.org>", "501 5.5.2 ")
	c.expect("RCPT TO:<>", "501 5.5.2 ")
	c.expect("RCPT TO:<b@local.test> FOO=BAR", "555 5.5.4 ") // RFC 5321 §4.1.1.11
	c.expect("RCPT TO:<b@local.test>", "250 ")
	id := queuedID(t, c.data("Subject: after errors\r\n\r\n.\r\n"))
	env, _ := readMessage(t, q, id)
	if env.From != "a@example.org" || len(env.Recipients) != 1 {
		t.Errorf("envelope %+v", env)
	}
	c.expect("QUIT", "221 2.0.0 ")
}

func TestRSETClears(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	c.expect("RSET", "250 2.0.0 ")
	c.expect("DATA", "503 5.5.1 Error: need RCPT command")
	c.expect("RCPT TO:<b@local.test>", "503 5.5.1 Error: need MAIL command")
	c.expect("MAIL FROM:<new@example.org>", "250 ")
	c.expect("RCPT TO:<c@local.test>", "250 ")
	id := queuedID(t, c.data(".\r\n"))
	env, _ := readMessage(t, q, id)
	if env.From != "new@example.org" || len(env.Recipients) != 1 || env.Recipients[0].Addr != "c@local.test" {
		t.Errorf("envelope after RSET %+v", env)
	}
}

func TestNullSender(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	id := queuedID(t, c.data("Subject: bounce\r\n\r\n.\r\n"))
	if env, _ := readMessage(t, q, id); env.From != "" {
		t.Errorf("From %q, want the null sender", env.From)
	}
}

func TestMessageTooBig(t *testing.T) {
	q := newQueue(t)
	opts := testOptions(q)
	opts.MaxMessageBytes = 100
	c := dial(t, startServer(t, opts))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org> SIZE=101", "552 5.3.4 ")
	c.expect("MAIL FROM:<a@example.org> SIZE=100", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 20) + ".\r\n"
	if got := c.data(big); got != "552 5.3.4 Error: message size exceeds fixed limit" {
		t.Errorf("DATA of %d bytes: %q, want 552 5.3.4", len(big), got)
	}
	queueEmpty(t, q)

	// The same session goes on; a message that fits is queued.
	c.expect("NOOP", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	queuedID(t, c.data("Subject: small\r\n\r\n.\r\n"))
}

// RFC 5321 §4.5.3.1.8: 100 recipients are taken, the 101st gets 452.
func TestTooManyRecipients(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	for i := 1; i <= 100; i++ {
		c.expect(fmt.Sprintf("RCPT TO:<r%d@local.test>", i), "250 ")
	}
	c.expect("RCPT TO:<r101@local.test>", "452 4.5.3 ")
	id := queuedID(t, c.data("Subject: many\r\n\r\n.\r\n"))
	env, msg := readMessage(t, q, id)
	if len(env.Recipients) != 100 || env.Recipients[99].Addr != "r100@local.test" {
		t.Errorf("%d recipients, want r1…r100", len(env.Recipients))
	}
	if strings.Contains(msg, "for <") {
		t.Errorf("Received names a recipient of many:\n%s", msg)
	}
}

func TestRecipientRefused(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	for _, tc := range []struct{ name, rcpt, want string }{
		{"empty", "<>", "501 "},
		{"no domain", "<bob>", "501 "},
		{"other domain", "<bob@example.net>", "554 5.7.1 "},
		{"quoted relay", `<"bob@example.net"@local.test>`, "554 5.7.1 "},
		{"percent hack", "<bob%example.net@local.test>", "554 5.7.1 "},
		{"bang path", "<example.net!bob@local.test>", "554 5.7.1 "},
		{"source route", "<@local.test:bob@example.net>", "554 5.7.1 "},
		{"control character", "<bo\x01b@local.test>", "501 5.1.3 "},
		{"not UTF-8", "<bo\xffb@local.test>", "501 5.1.3 "},
		{"UTF-8 without SMTPUTF8", "<bøb@local.test>", "553 5.6.7 "},
	} {
		if got := c.cmd("RCPT TO:" + tc.rcpt); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: RCPT TO:%s: %q, want %q…", tc.name, tc.rcpt, got, tc.want)
		}
	}
	c.expect("RSET", "250 ")
	c.expect("MAIL FROM:<a\x01@example.org>", "501 5.1.7 ")
	c.expect("MAIL FROM:<å@example.org>", "553 5.6.7 ")
	c.expect("MAIL FROM:<å@example.org> SMTPUTF8", "250 ")
	c.expect("RCPT TO:<bøb@local.test>", "250 ")
	c.expect(`RCPT TO:<"john doe"@local.test>`, "250 ")
	id := queuedID(t, c.data("Subject: utf8\r\n\r\n.\r\n"))
	env, _ := readMessage(t, q, id)
	if !env.SMTPUTF8 || env.From != "å@example.org" || len(env.Recipients) != 2 ||
		env.Recipients[0].Addr != "bøb@local.test" || env.Recipients[1].Addr != "john doe@local.test" {
		t.Errorf("envelope %+v", env)
	}
}

// RFC 3030: BDAT chunks are taken as they are, without dot-stuffing.
func TestBDAT(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	chunk1 := "Subject: chunks\r\n\r\n.not stuffed\r"
	chunk2 := "\nlast line\r\n"
	c.text.W.WriteString(fmt.Sprintf("BDAT %d\r\n%s", len(chunk1), chunk1))
	c.text.W.Flush()
	if r := c.reply(); r[0] != "250 2.0.0 Continue" {
		t.Fatalf("first chunk: %q", r)
	}
	c.text.W.WriteString(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk2), chunk2))
	c.text.W.Flush()
	r := c.reply()
	id := queuedID(t, r[len(r)-1])
	_, msg := readMessage(t, q, id)
	if body := msg[strings.Index(msg, "Subject:"):]; body != "Subject: chunks\n\n.not stuffed\nlast line\n" {
		t.Errorf("message %q", msg)
	}
}

func TestQueueFailure(t *testing.T) {
	broken := queue.New(filepath.Join(t.TempDir(), "missing"))
	c := dial(t, startServer(t, testOptions(broken)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	if got := c.data("Subject: lost?\r\n\r\n.\r\n"); got != "451 4.3.0 Error: queue file write error" {
		t.Errorf("DATA with a broken queue: %q, want 451 4.3.0", got)
	}
	c.expect("NOOP", "250 ")
	c.expect("QUIT", "221 ")
}

// A message that starts with white space would otherwise continue our
// Received header.
func TestLeadingWhiteSpace(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	id := queuedID(t, c.data(" indented\r\n.\r\n"))
	_, msg := readMessage(t, q, id)
	if !strings.HasSuffix(msg, testDate+"\n\n indented\n") {
		t.Errorf("message %q", msg)
	}
}

// go-smtp reads lines of at most 2000 bytes (twice RFC 5321's limit); a
// longer line ends the message with 500 and go-smtp then drops the client.
func TestLineTooLong(t *testing.T) {
	q := newQueue(t)
	c := dial(t, startServer(t, testOptions(q)))
	c.expect("EHLO client.test", "250 ")
	c.expect("MAIL FROM:<a@example.org>", "250 ")
	c.expect("RCPT TO:<b@local.test>", "250 ")
	got := c.data("Subject: long\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n.\r\n")
	if got != "500 5.5.2 Error: line too long" {
		t.Errorf("DATA with a 3000-byte line: %q, want 500 5.5.2", got)
	}
	queueEmpty(t, q)
}
