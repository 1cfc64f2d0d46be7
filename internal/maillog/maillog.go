// Package maillog writes yubin's mail log: one line per event, each a
// function here, so that callers never format log lines. No body, no
// header beyond Message-ID, no password or AUTH data is ever logged.
//
// A line about a queued message speaks Postfix's syntax, because that is
// what admins grep for and what their tools parse (pflogsumm, logwatch,
// fail2ban): it starts with the queue ID, so `grep 3FQ9` tells the
// message's whole story, and it carries the name of the Postfix program
// that would have written it, in the syslog tag yubin/NAME[pid]:
//
//	yubin/smtpd[pid]:  3FQ9: client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=bob
//	yubin/smtpd[pid]:  NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 ...; from=<a@x> to=<b@y> proto=ESMTP helo=<c>
//	yubin/pickup[pid]: 3FQ9: uid=1000 from=<alice@here>
//	yubin/cleanup[pid]: 3FQ9: message-id=<20261128064501.3FQ9@here>
//	yubin/qmgr[pid]:   3FQ9: from=<a@x>, size=4312, nrcpt=2 (queue active)
//	yubin/smtp[pid]:   3FQ9: to=<b@y>, relay=mx.y[192.0.2.1]:25, delay=1.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 ok)
//	yubin/local[pid]:  3FQ9: to=<c@here>, orig_to=<info@here>, relay=local, delay=0.01, ..., status=sent (delivered to mailbox)
//	yubin/bounce[pid]: 3FQ9: sender non-delivery notification: 3FQB
//	yubin/qmgr[pid]:   3FQ9: removed
//
// so that `pflogsumm --syslog-name=yubin` counts yubin's mail. The
// runner's troubles are Postfix's "warning:" lines, which pflogsumm lists
// by program. Events Postfix has no line for (logins, sessions, reloads, a
// mailbox server's errors) are key=value lines under the program's own
// name (yubin/pop3d[pid]: event=auth proto=pop3 user=bob result=ok ...).
//
// The log goes to syslog (facility mail), or to the file maillog_file in
// syslog's own line format, or to a writer set by SetOutput (a daemon's
// standard error, a test's buffer), which gets the bare lines.
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

// The Postfix programs whose names lines carry; other lines carry the
// name of the program writing them, set by Open.
const (
	smtpd   = "smtpd"   // a message received over SMTP, a rejected command
	pickup  = "pickup"  // a message submitted locally
	cleanup = "cleanup" // the Message-ID of a message queued
	qmgr    = "qmgr"    // a message taken up by the runner, and its end
	bounce  = "bounce"  // a delivery status notification sent
)

// Agent is the Postfix delivery agent a delivery attempt is logged as.
type Agent string

const (
	SMTP  Agent = "smtp"  // relayed to another server
	Local Agent = "local" // a mailbox, a command or a file on this host
)

var (
	mu   sync.Mutex
	out  output = plain{io.Discard}
	prog        = "yubin"
)

// output takes one line, without its newline, and the name it is logged
// under.
type output interface {
	put(name, text string)
}

// SetOutput sends the bare lines to w (a daemon's stderr, a test's
// buffer); nil discards them.
func SetOutput(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	set(plain{w})
}

func set(o output) {
	mu.Lock()
	out = o
	mu.Unlock()
}

type plain struct{ w io.Writer }

func (p plain) put(_, text string) { io.WriteString(p.w, text+"\n") }

// Open makes the log that of program name ("smtpd", "sendmail"): its lines
// go to file when file is not "" (maillog_file), else to the system log
// when /dev/log is there; otherwise they stay where SetOutput sent them.
// A file that cannot be opened falls back to the system log, and the first
// line says why.
func Open(name, file string) {
	mu.Lock()
	prog = name
	mu.Unlock()
	if file == "" {
		syslog()
		return
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o660)
	if err != nil {
		syslog()
		warning("maillog_file: " + err.Error() + "; logging to syslog")
		return
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	host, _, _ = strings.Cut(host, ".") // as syslog daemons write it
	set(&logFile{f: f, host: host, pid: strconv.Itoa(os.Getpid())})
}

// logFile appends each line to maillog_file as syslog daemons write them,
// "Nov 28 04:16:31 host yubin/smtp[1234]: 3FQ9...: to=<...", with one
// write(2) to a file opened O_APPEND, so that the lines of programs
// writing at once never mix.
type logFile struct {
	f         *os.File
	host, pid string
}

func (l *logFile) put(name, text string) {
	l.f.WriteString(time.Now().Format(time.Stamp) + " " + l.host + " yubin/" + name + "[" + l.pid + "]: " + text + "\n")
}

// syslog sends the log to the system log (/dev/log), facility mail, when
// the log socket is there; otherwise the log stays where it was.
//
// It speaks the local syslog datagram protocol itself, with a raw socket:
// log/syslog pulls in package net, whose size alone costs every sendmail run
// a noticeable part of its start-up.
func syslog() {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: "/dev/log"}); err != nil {
		syscall.Close(fd)
		return
	}
	set(&syslogSocket{fd: fd, pid: strconv.Itoa(os.Getpid())})
}

// mailInfo is the priority of every line: facility mail (2), severity info (6).
const mailInfo = 2<<3 | 6

// syslogSocket sends each line as one RFC 3164 datagram:
// "<22>Nov 28 04:16:31 yubin/smtp[1234]: 3FQ9...: to=<...".
type syslogSocket struct {
	fd  int
	pid string
}

func (s *syslogSocket) put(name, text string) {
	msg := "<" + strconv.Itoa(mailInfo) + ">" + time.Now().Format(time.Stamp) + " yubin/" + name + "[" + s.pid + "]: " + text
	syscall.Sendto(s.fd, []byte(msg), 0, nil)
}

// line writes one line under Postfix program name, or under the program's
// own name when name is "".
func line(name, text string) {
	mu.Lock()
	defer mu.Unlock()
	if name == "" {
		name = prog
	}
	out.put(name, text)
}

// warning: something went wrong that the admin should know of, in the form
// Postfix logs it (pflogsumm lists these by program).
func warning(text string) { line("", "warning: "+printable(text)) }

// RunnerError: the runner could not do something that is not one message's
// delivery (open the aliases, list the queue, write a bounce); id is the
// message's queue ID, or "".
//
//	warning: 3FQ9: queue notification: no space left on device
func RunnerError(id, reason string) {
	if id != "" {
		reason = id + ": " + reason
	}
	warning(reason)
}

// Corrupt: a queue file could not be read; it is moved to corrupt/.
func Corrupt(id, reason string) {
	warning(id + ": corrupt queue file, moved to corrupt/: " + reason)
}

// Received: smtpd queued message id from a client (name its verified
// reverse DNS name, or ""; ip its address); mech and user are the SMTP AUTH
// mechanism and identity, or "".
func Received(id, name, ip, mech, user string) {
	text := id + ": client=" + client(name, ip)
	if user != "" {
		text += ", sasl_method=" + printable(mech) + ", sasl_username=" + printable(user)
	}
	line(smtpd, text)
}

// Pickup: a local user (uid) submitted message id, by sendmail or
// sendmail -bs.
func Pickup(id string, uid int, from string) {
	line(pickup, id+": uid="+strconv.Itoa(uid)+" from=<"+printable(from)+">")
}

// MessageID: the Message-ID field of message id just queued (Postfix's
// cleanup line), so that a message can be found from its header; nothing
// when the message has none.
func MessageID(id, msgID string) {
	if msgID != "" {
		line(cleanup, id+": message-id="+printable(msgID))
	}
}

// Reject: smtpd refused a client's command: stage is "CONNECT", "RCPT" or
// "DATA"; name and ip are the client's as in Received; reply is the reply
// line given; proto is "SMTP" or "ESMTP" (after EHLO); from, to and helo
// are "" when not known yet.
//
//	NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 550 5.1.1 no such user here; from=<a@x> to=<b@y> proto=ESMTP helo=<c>
func Reject(stage, name, ip, reply, proto, from, to, helo string) {
	var b strings.Builder
	b.WriteString("NOQUEUE: reject: " + stage + " from " + client(name, ip) + ": " + printable(reply) + ";")
	if stage != "CONNECT" {
		b.WriteString(" from=<" + printable(from) + ">")
	}
	if to != "" {
		b.WriteString(" to=<" + printable(to) + ">")
	}
	b.WriteString(" proto=" + proto)
	if helo != "" {
		b.WriteString(" helo=<" + printable(helo) + ">")
	}
	line(smtpd, b.String())
}

// client is the form Postfix names a client in: name[ip], unknown[ip]
// when the address has no verified name.
func client(name, ip string) string {
	if name == "" {
		name = "unknown"
	}
	return printable(name) + "[" + printable(ip) + "]"
}

// Active: the runner took a message up (Postfix's qmgr line); size is the
// queued message's, nrcpt the recipients attempted now.
func Active(id, from string, size int64, nrcpt int) {
	line(qmgr, id+": from=<"+printable(from)+">, size="+strconv.FormatInt(size, 10)+", nrcpt="+strconv.Itoa(nrcpt)+" (queue active)")
}

// Attempt: one delivery attempt of one recipient by agent.
//
//	3FQ9...: to=<b@y>, orig_to=<a@x>, relay=mx.y[192.0.2.1]:25, delay=1.2, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 ok)
//
// status is sent, deferred, bounced or expired; relay is "local",
// "mx.y[ip]:port", or "" when no server was reached (logged as "none", or
// "local" for the local agent); origTo may be "".
func Attempt(agent Agent, id, to, origTo, relay string, delay time.Duration, dsn, status, reply string) {
	var b strings.Builder
	b.WriteString(id + ": to=<" + printable(to) + ">")
	if origTo != "" && origTo != to {
		b.WriteString(", orig_to=<" + printable(origTo) + ">")
	}
	switch {
	case relay != "":
	case agent == Local:
		relay = "local"
	default:
		relay = "none"
	}
	b.WriteString(", relay=" + relay)
	// Seconds with at most two decimals, as Postfix writes them.
	b.WriteString(", delay=" + strconv.FormatFloat(float64(delay.Round(10*time.Millisecond))/float64(time.Second), 'f', -1, 64))
	b.WriteString(", delays=0/0/0/0, dsn=" + dsn + ", status=" + status)
	if reply != "" {
		b.WriteString(" (" + printable(reply) + ")")
	}
	line(string(agent), b.String())
}

// BounceQueued: a delivery status notification for message id was queued
// as dsnID; kind is "non-delivery", "delay" or "success", logged in
// Postfix's words ("sender delivery status notification" for success).
func BounceQueued(id, kind, dsnID string) {
	if kind == "success" {
		kind = "delivery status"
	}
	line(bounce, id+": sender "+kind+" notification: "+dsnID)
}

// Removed: every recipient of a message is done; it left the queue.
func Removed(id string) { line(qmgr, id+": removed") }

// printable keeps one log line one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// The events Postfix has no line for: key=value pairs, queue ID first
// when there is one, stable keys, under the program's own name.

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
	line("", b.String())
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

// Auth: a login attempt. proto is "smtp", "pop3" or "imap", mech the way
// ("USER", "APOP", "PLAIN"), result "ok", "fail", "tempfail" or "in-use";
// reason says why it did not succeed (never the password); failures
// counts the session's failed attempts so far.
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

// ServerError: a server could not do what a session needed (a file that
// cannot be read, a child that cannot start); user may be "".
func ServerError(proto, client, user, reason string) {
	emit("event", "error", "proto", proto, "user", user, "reason", reason, "client", client)
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

// Reload: a daemon re-read its configuration on SIGHUP; result "ok" or
// "fail" (reason says why; the old configuration stays in force).
func Reload(proto, result, reason string) {
	emit("event", "reload", "proto", proto, "result", result, "reason", reason)
}

// BounceSuppressed: a notification was not sent; reason says why (the
// sender's hourly limit, NOTIFY=NEVER).
func BounceSuppressed(id, sender, reason string) {
	emit("id", id, "event", "bounce-suppressed", "to", "<"+sender+">", "reason", reason)
}
