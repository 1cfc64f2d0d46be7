package submit

import (
	"mime"
	"strconv"
	"strings"
	"time"

	"yubin/internal/address"
)

// The fields sendmail adds to a message that lacks them.

// DateHeader is t as an RFC 5322 §3.3 date-time, e.g.
// "Sat, 28 Nov 2026 03:58:56 +0000".
func DateHeader(t time.Time) string {
	return t.Format("Mon, 02 Jan 2006 15:04:05 -0700")
}

// MessageID is a Message-ID built as Postfix's cleanup does, from the
// arrival time, the queue ID and the host name:
// "<20261128035856.QUEUEID@hostname>".
func MessageID(queueID, hostname string) string {
	return messageID(time.Now(), queueID, hostname)
}

func messageID(t time.Time, queueID, hostname string) string {
	return "<" + t.UTC().Format("20060102150405") + "." + queueID + "@" + hostname + ">"
}

// FromHeader is the value of a From: field for addr with the display name
// fullName (sendmail -F, or the user's GECOS name): `Full Name <addr>`, or
// just addr when fullName is empty. The name is written as RFC 5322 atoms
// when it can be, as a quoted-string when it holds specials, and as RFC
// 2047 encoded-words when it holds anything but printable ASCII. Line
// breaks in the name become spaces, as sendmail 8's denlstring() does.
func FromHeader(fullName, addr string) string {
	name := strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(fullName))
	if name == "" {
		return addr
	}
	return phrase(name) + " <" + addr + ">"
}

// phrase writes s as an RFC 5322 §3.2.5 phrase.
func phrase(s string) string {
	atoms, printable, qsafe := true, true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c > '~' {
			printable = false
			continue
		}
		if c != ' ' && !address.IsAtext(c) {
			atoms = false
		}
		// RFC 2047 §5(3): in a phrase, a "Q" encoded-word may hold only
		// letters, digits and !*+-/=_ (mime.QEncoding writes other
		// printable characters as they are).
		if !(c == ' ' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!*+-/", c) >= 0) {
			qsafe = false
		}
	}
	switch {
	case !printable && qsafe:
		return mime.QEncoding.Encode("utf-8", s)
	case !printable:
		return mime.BEncoding.Encode("utf-8", s)
	case atoms:
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Received is the value of the Received: field for a local submission, in
// the form Postfix's pickup writes ("by HOST (Postfix, from userid UID)
// id QUEUEID; DATE"), with "for <rcpt>" on a line of its own as Postfix's
// smtpd writes it when a message has exactly one recipient; pass rcpt ""
// otherwise. Lines are folded with LF and a tab.
func Received(hostname string, uid int, queueID string, t time.Time, rcpt string) string {
	s := "by " + hostname + " (yubin, from userid " + strconv.Itoa(uid) + ")\n\tid " + queueID
	if rcpt != "" {
		s += "\n\tfor <" + rcpt + ">"
	}
	return s + "; " + DateHeader(t)
}
