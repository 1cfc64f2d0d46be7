// Package maillog writes yubin's mail log: one line per event, key=value,
// queue ID first, stable keys, so that `grep id=XXXX` tells a message's whole
// story. Each event is a function here; callers never format log lines. No
// body, no header beyond Message-ID, no password or AUTH data is ever logged.
package maillog

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	mu  sync.Mutex
	out io.Writer = io.Discard
)

// SetOutput sends the log to w (a daemon's stderr, a test's buffer); nil
// discards it.
func SetOutput(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	mu.Lock()
	out = w
	mu.Unlock()
}

// Syslog sends the log to the system log (/dev/log), facility mail, as tag,
// when the log socket is there; otherwise the log stays where it was.
//
// It speaks the local syslog datagram protocol itself, with a raw socket:
// log/syslog pulls in package net, whose size alone costs every sendmail run
// a noticeable part of its start-up.
func Syslog(tag string) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: "/dev/log"}); err != nil {
		syscall.Close(fd)
		return
	}
	SetOutput(&syslogWriter{fd: fd, prefix: "<" + strconv.Itoa(mailInfo) + ">", tag: tag + "[" + strconv.Itoa(os.Getpid()) + "]: "})
}

// mailInfo is the priority of every line: facility mail (2), severity info (6).
const mailInfo = 2<<3 | 6

// syslogWriter writes each line as one RFC 3164 datagram:
// "<22>Nov 28 04:16:31 yubin/sendmail[1234]: id=... event=queued ...".
type syslogWriter struct {
	fd          int
	prefix, tag string
}

func (w *syslogWriter) Write(p []byte) (int, error) {
	msg := w.prefix + time.Now().Format(time.Stamp) + " " + w.tag + strings.TrimSuffix(string(p), "\n")
	if err := syscall.Sendto(w.fd, []byte(msg), 0, nil); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Queued: a message was committed to the queue. client is the SMTP client's
// address, user the local submitter or SMTP AUTH identity; either may be "".
func Queued(id, from string, nrcpt int, size int64, client, user string) {
	emit("id", id, "event", "queued", "from", "<"+from+">", "nrcpt", strconv.Itoa(nrcpt),
		"size", strconv.FormatInt(size, 10), "client", client, "user", user)
}

// emit writes one line of key, value pairs, leaving out empty values.
func emit(kv ...string) {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(quote(kv[i+1]))
	}
	b.WriteByte('\n')
	mu.Lock()
	io.WriteString(out, b.String())
	mu.Unlock()
}

// quote leaves simple values bare and quotes the rest, so every line splits
// the same way.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \"\\=\t\n\r") && strconv.CanBackquote(v) {
		return v
	}
	return strconv.Quote(v)
}

// Delivered: a message was stored in a local mailbox. id is the queue ID when
// the deliverer knows it; origTo the original recipient, or ""; mailbox the
// Maildir; size the bytes stored, header lines added by delivery included.
func Delivered(id, from, to, origTo, mailbox string, size int64) {
	if origTo != "" {
		origTo = "<" + origTo + ">"
	}
	emit("id", id, "event", "delivered", "from", "<"+from+">", "to", "<"+to+">", "orig_to", origTo,
		"mailbox", mailbox, "size", strconv.FormatInt(size, 10))
}

// Auth: a login attempt on a mailbox server. proto is "pop3" or "imap",
// mech the way ("USER", "APOP", "PLAIN"), result "ok", "fail", "tempfail" or
// "in-use"; reason says why it did not succeed (never the password);
// failures counts the session's failed attempts so far.
func Auth(proto, user, mech, result, reason, client string, failures int) {
	emit("event", "auth", "proto", proto, "user", user, "mech", mech, "result", result,
		"reason", reason, "failures", strconv.Itoa(failures), "client", client)
}

// Logout: a mailbox session ended. result is "quit", "dropped", "timeout"
// or "error"; retr and dele count the messages retrieved and removed, left
// those that stay; bytes is what was sent of messages.
func Logout(proto, user, client, result string, retr, dele, left int, bytes int64) {
	emit("event", "logout", "proto", proto, "user", user, "result", result, "retr", strconv.Itoa(retr),
		"dele", strconv.Itoa(dele), "left", strconv.Itoa(left), "bytes", strconv.FormatInt(bytes, 10), "client", client)
}

// ServerError: a mailbox server could not do what a session needed (a file
// that cannot be read, a child that cannot start); user may be "".
func ServerError(proto, client, user, reason string) {
	emit("event", "error", "proto", proto, "user", user, "reason", reason, "client", client)
}
