package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func localOptions(t *testing.T) Options {
	opts := testOptions(newQueue(t))
	opts.LocalDomains = nil // a local submission needs none
	opts.Local = &LocalUser{Name: "alice", UID: 1000}
	return opts
}

// sendmail -bs as a mail client drives it: one command, one reply, over
// pipes; the output must end with the 221 to QUIT, and ServeStdio return.
func TestServeStdioSession(t *testing.T) {
	log := captureLog(t)
	opts := localOptions(t)
	inR, inW := io.Pipe()   // client → server (stdin)
	outR, outW := io.Pipe() // server → client (stdout)
	served := make(chan error, 1)
	go func() { served <- ServeStdio(context.Background(), opts, inR, outW) }()

	var transcript bytes.Buffer
	text := textproto.NewConn(struct {
		io.Reader
		io.Writer
		io.Closer
	}{io.TeeReader(outR, &transcript), inW, inW})
	c := &smtpClient{t: t, text: text}
	if got := c.reply(); got[0] != "220 mx.test ESMTP Service Ready" {
		t.Fatalf("greeting %q", got)
	}
	c.expect("EHLO workstation.test", "250 ")
	c.expect("MAIL FROM:<alice@workstation.test>", "250 ")
	c.expect("RCPT TO:<bob@anywhere.example>", "250 ") // any domain: local submission
	id := queuedID(t, c.data("Subject: from alpine\r\n\r\n..dot\r\n.\r\n"))
	c.expect("QUIT", "221 2.0.0 Bye")

	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("ServeStdio did not return after QUIT")
	}
	outW.Close()
	if rest, _ := io.ReadAll(outR); len(rest) != 0 {
		t.Errorf("written after 221: %q", rest)
	}
	if !strings.HasSuffix(transcript.String(), "\r\n221 2.0.0 Bye\r\n") {
		t.Errorf("output does not end with the 221 line:\n%s", transcript.String())
	}

	env, msg := readMessage(t, opts.Queue, id)
	want := "Received: from workstation.test (localhost [127.0.0.1])\n" +
		"\tby mx.test (yubin, from userid 1000) with ESMTP id " + id + "\n" +
		"\tfor <bob@anywhere.example>; " + testDate + "\n" +
		"Subject: from alpine\n\n.dot\n"
	if msg != want {
		t.Errorf("message\n%q\nwant\n%q", msg, want)
	}
	if env.User != "alice" || env.Client != "" || env.ClientName != "" || env.Proto != "ESMTP" || env.Helo != "workstation.test" {
		t.Errorf("envelope %+v", env)
	}
	if l, _, _ := strings.Cut(log.String(), "\n"); l != id+": uid=1000 from=<alice@workstation.test>" {
		t.Errorf("log %q", l)
	}
}

// A whole pipelined session read from a file (sendmail -bs < script): every
// reply, in order, ending with 221.
func TestServeStdioScript(t *testing.T) {
	opts := localOptions(t)
	in := strings.NewReader("EHLO script.test\r\n" +
		"MAIL FROM:<alice@script.test>\r\n" +
		"RCPT TO:<bob@local.test>\r\n" +
		"DATA\r\n" +
		"Subject: scripted\r\n\r\nbody\r\n.\r\n" +
		"QUIT\r\n")
	var out bytes.Buffer
	if err := ServeStdio(context.Background(), opts, in, &out); err != nil {
		t.Fatalf("ServeStdio: %v", err)
	}
	var codes []string
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		if l := sc.Text(); len(l) > 3 && l[3] == ' ' {
			codes = append(codes, l[:3])
		}
	}
	if got := strings.Join(codes, " "); got != "220 250 250 250 354 250 221" {
		t.Errorf("reply codes %s, want 220 250 250 250 354 250 221\n%s", got, out.String())
	}
	if !strings.HasSuffix(out.String(), "\r\n221 2.0.0 Bye\r\n") {
		t.Errorf("output does not end with the 221 line:\n%s", out.String())
	}
	if ids, _ := opts.Queue.IDs(); len(ids) != 1 {
		t.Errorf("queue holds %v, want one message", ids)
	}
}

// Input that ends without QUIT ends the session; a transaction cut off in
// DATA leaves nothing behind.
func TestServeStdioEOF(t *testing.T) {
	opts := localOptions(t)
	in := strings.NewReader("EHLO script.test\r\nMAIL FROM:<a@script.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\nSubject: cut\r\n")
	var out bytes.Buffer
	if err := ServeStdio(context.Background(), opts, in, &out); err != nil {
		t.Fatalf("ServeStdio: %v", err)
	}
	if !strings.Contains(out.String(), "\r\n354 ") {
		t.Errorf("output:\n%s", out.String())
	}
	queueEmpty(t, opts.Queue)
}

func TestServeStdioCancel(t *testing.T) {
	opts := localOptions(t)
	inR, inW := io.Pipe()
	defer inW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeStdio(ctx, opts, inR, io.Discard) }()
	cancel()
	select {
	case err := <-served:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ServeStdio after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("ServeStdio did not return after cancel")
	}
}
