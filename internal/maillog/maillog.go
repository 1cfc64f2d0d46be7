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

// The queue runner's events. A delivery attempt is logged in Postfix's own
// syntax rather than key=value, because that is what admins' tools parse
// (pflogsumm, logwatch, fail2ban's filters): with syslog tags such as
// yubin/smtp[pid], `pflogsumm --syslog-name=yubin` counts our mail.

// Attempt: one delivery attempt of one recipient.
//
//	3FQ9...: to=<b@y>, orig_to=<a@x>, relay=mx.y[192.0.2.1]:25, delay=1.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 ok)
//
// status is sent, deferred, bounced or expired; relay is "local",
// "mx.y[ip]:port", or "none" when no server was reached; origTo may be "".
func Attempt(id, to, origTo, relay string, delay time.Duration, dsn, status, reply string) {
	var b strings.Builder
	b.WriteString(id + ": to=<" + printable(to) + ">")
	if origTo != "" && origTo != to {
		b.WriteString(", orig_to=<" + printable(origTo) + ">")
	}
	if relay == "" {
		relay = "none"
	}
	b.WriteString(", relay=" + relay)
	// Seconds with at most two decimals, as Postfix writes them.
	b.WriteString(", delay=" + strconv.FormatFloat(float64(delay.Round(10*time.Millisecond))/float64(time.Second), 'f', -1, 64))
	b.WriteString(", delays=0/0/0/0, dsn=" + dsn + ", status=" + status)
	if reply != "" {
		b.WriteString(" (" + printable(reply) + ")")
	}
	line(b.String())
}

// Active: the runner took a message up (Postfix's qmgr line).
func Active(id, from string, size int64, nrcpt int) {
	line(id + ": from=<" + printable(from) + ">, size=" + strconv.FormatInt(size, 10) + ", nrcpt=" + strconv.Itoa(nrcpt) + " (queue active)")
}

// Removed: every recipient of a message is done; it left the queue.
func Removed(id string) { line(id + ": removed") }

// BounceQueued: a delivery status notification for message id was queued
// as dsnID; kind is "non-delivery", "delay" or "success".
func BounceQueued(id, kind, dsnID string) {
	line(id + ": sender " + kind + " notification: " + dsnID)
}

// BounceSuppressed: a notification was not sent; reason says why (the
// sender's hourly limit, NOTIFY=NEVER).
func BounceSuppressed(id, sender, reason string) {
	emit("id", id, "event", "bounce-suppressed", "to", "<"+sender+">", "reason", reason)
}

// Corrupt: a queue file could not be read and was moved to corrupt/.
func Corrupt(id, reason string) {
	emit("id", id, "event", "corrupt", "reason", reason)
}

// RunnerError: the runner could not do something that is not one message's
// delivery (open the aliases, list the queue, write a bounce).
func RunnerError(id, reason string) {
	emit("id", id, "event", "error", "reason", reason)
}

// line writes one raw line.
func line(s string) {
	mu.Lock()
	io.WriteString(out, s+"\n")
	mu.Unlock()
}

// printable keeps one log line one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// SMTPConnect: a client connected to smtpd on port.
func SMTPConnect(client, port string) {
	emit("event", "connect", "proto", "smtp", "client", client, "port", port)
}

// SMTPDisconnect: an SMTP session ended. result is "closed" (QUIT or the
// client went away), "timeout", "shutdown" or "too-many-errors"; msgs is
// the messages queued, errors the error replies given.
func SMTPDisconnect(client, result string, msgs, errors int) {
	emit("event", "disconnect", "proto", "smtp", "result", result, "msgs", strconv.Itoa(msgs),
		"errors", strconv.Itoa(errors), "client", client)
}

// SMTPReject: smtpd refused a client at stage "connect", "rcpt" or "data";
// from and to are <addresses> or ""; reply is the reply line given.
func SMTPReject(client, helo, stage, from, to, reply string) {
	emit("event", "reject", "proto", "smtp", "stage", stage, "from", from, "to", to,
		"reply", reply, "client", client, "helo", helo)
}

// SMTPRecipient: one recipient of a message just queued by smtpd (after
// its Queued line); orcpt is the DSN ORCPT, or "".
func SMTPRecipient(id, to, orcpt string) {
	emit("id", id, "event", "rcpt", "to", "<"+to+">", "orcpt", orcpt)
}

// Reload: a daemon re-read its configuration on SIGHUP; result "ok" or
// "fail" (reason says why; the old configuration stays in force).
func Reload(proto, result, reason string) {
	emit("event", "reload", "proto", proto, "result", result, "reason", reason)
}
