// Package dsn writes delivery status notifications: the bounce that tells a
// sender their mail could not be delivered (RFC 3464, in an RFC 6522
// multipart/report), and the delay warnings and success reports that RFC
// 3461's NOTIFY asks for.
//
// # The message
//
//	From: Mail Delivery Subsystem <MAILER-DAEMON@hostname>
//	To: <the original envelope sender>
//	Subject: Returned mail: see transcript for details
//	Auto-Submitted: auto-replied                         (RFC 3834)
//	Content-Type: multipart/report; report-type=delivery-status; boundary=...
//
//	text/plain              the classic sendmail 8 report: "The original
//	                        message was received at ...", "----- The
//	                        following addresses had permanent fatal errors
//	                        -----", each address with its reason, then
//	                        "----- Transcript of session follows -----" with
//	                        each remote server's reply
//	message/delivery-status Reporting-MTA, Arrival-Date, Original-Envelope-Id,
//	                        then per recipient: Final-Recipient,
//	                        Original-Recipient (ORCPT), Action, Status,
//	                        Remote-MTA, Diagnostic-Code, Last-Attempt-Date
//	message/rfc822          the original message (RET=FULL or no RET), or
//	text/rfc822-headers     its header only (RET=HDRS, or a message larger
//	                        than Report.MaxReturn)
//
// Lines end in LF, as everything in the queue. The caller queues the result
// with the null sender <>, so that a bounce is never bounced.
package dsn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"
)

// Kind is what the report says about its recipients.
type Kind int

const (
	Failure Kind = iota // permanent failure or expiry: a bounce
	Delay               // still trying: a warning
	Success             // delivered, NOTIFY=SUCCESS asked for it
)

// DefaultMaxReturn is the largest original message returned whole
// (Postfix's bounce_size_limit); above it only the header comes back.
const DefaultMaxReturn = 50000

// Report is one notification.
type Report struct {
	Kind         Kind
	ReportingMTA string // our hostname
	QueueID      string // the original's queue ID
	Sender       string // the original envelope sender: the report goes to it
	Arrival      time.Time
	EnvID        string // DSN ENVID of the original
	Ret          string // DSN RET of the original: FULL, HDRS or ""
	Recipients   []Recipient
	// Original returns the original message (LF line endings); Size is its size.
	Original  io.Reader
	Size      int64
	MaxReturn int64 // 0: DefaultMaxReturn
	Date      time.Time
	// RetryUntil is when a delayed message will be given up (Delay only).
	RetryUntil time.Time
	// ID makes the Message-ID and boundary unique (the bounce's future
	// queue ID is not known yet; any unique string does).
	ID string
}

// Recipient is one line of the report.
type Recipient struct {
	Final    string // the address the attempt was for
	Original string // ORCPT as received, "rfc822;addr"; "" when none
	Status   string // RFC 3463 code, "5.1.1"
	// Diagnostic is the remote server's reply ("550 5.1.1 no such user"),
	// DiagType its kind ("smtp"; "x-unix" for local deliveries).
	Diagnostic, DiagType string
	// Reason is our account of the failure, for the text part.
	Reason      string
	RemoteMTA   string // the server that replied; "" for local
	LastAttempt time.Time
}

// Write writes the report as a complete message.
func (r *Report) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	date := r.Date
	if date.IsZero() {
		date = time.Now()
	}
	boundary := r.ID + "/" + r.ReportingMTA
	subject, action := "Returned mail: see transcript for details", "failed"
	switch r.Kind {
	case Delay:
		subject, action = "Warning: could not send message for past "+age(date.Sub(r.Arrival)), "delayed"
	case Success:
		subject, action = "Successful Mail Delivery Report", "delivered"
	}
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	p("From: Mail Delivery Subsystem <MAILER-DAEMON@%s>\n", r.ReportingMTA)
	p("To: <%s>\n", r.Sender)
	p("Subject: %s\n", subject)
	p("Date: %s\n", date.Format(time.RFC1123Z))
	p("Message-ID: <%s.dsn@%s>\n", r.ID, r.ReportingMTA)
	p("Auto-Submitted: auto-replied\n")
	p("MIME-Version: 1.0\n")
	p("Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n", boundary)
	p("\nThis is a MIME-encapsulated message.\n\n")

	p("--%s\n", boundary)
	p("Content-Type: text/plain; charset=%s\n", charset(r))
	p("Content-Description: Notification\n\n")
	r.writeText(bw, date)

	p("\n--%s\n", boundary)
	p("Content-Type: message/delivery-status\n")
	p("Content-Description: Delivery report\n\n")
	p("Reporting-MTA: dns; %s\n", r.ReportingMTA)
	if r.QueueID != "" {
		p("X-Yubin-Queue-ID: %s\n", r.QueueID)
	}
	if r.EnvID != "" {
		p("Original-Envelope-Id: %s\n", r.EnvID)
	}
	p("Arrival-Date: %s\n", r.Arrival.Format(time.RFC1123Z))
	for _, rc := range r.Recipients {
		p("\nFinal-Recipient: rfc822; %s\n", rc.Final)
		if typ, val, ok := strings.Cut(rc.Original, ";"); ok {
			p("Original-Recipient: %s; %s\n", strings.TrimSpace(typ), strings.TrimSpace(val))
		}
		p("Action: %s\n", action)
		p("Status: %s\n", rc.Status)
		if rc.RemoteMTA != "" {
			p("Remote-MTA: dns; %s\n", rc.RemoteMTA)
		}
		if rc.Diagnostic != "" {
			typ := rc.DiagType
			if typ == "" {
				typ = "smtp"
			}
			p("Diagnostic-Code: %s; %s\n", typ, oneLine(rc.Diagnostic))
		}
		if !rc.LastAttempt.IsZero() {
			p("Last-Attempt-Date: %s\n", rc.LastAttempt.Format(time.RFC1123Z))
		}
		if r.Kind == Delay && !r.RetryUntil.IsZero() {
			p("Will-Retry-Until: %s\n", r.RetryUntil.Format(time.RFC1123Z))
		}
	}

	p("\n")
	if r.Original != nil {
		max := r.MaxReturn
		if max <= 0 {
			max = DefaultMaxReturn
		}
		p("--%s\n", boundary)
		if strings.EqualFold(r.Ret, "HDRS") || r.Size > max || r.Kind != Failure {
			p("Content-Type: text/rfc822-headers\n")
			p("Content-Description: Undelivered Message Headers\n\n")
			writeHeader(bw, r.Original)
		} else {
			p("Content-Type: message/rfc822\n")
			p("Content-Description: Undelivered Message\n")
			p("Content-Transfer-Encoding: 8bit\n\n")
			lw := &lastByte{w: bw}
			if _, err := io.Copy(lw, r.Original); err != nil {
				return err
			}
			// The delimiter's own line break follows; a message without
			// a final newline gets one so that the delimiter starts a line.
			if lw.last != '\n' {
				p("\n")
			}
		}
	}
	p("--%s--\n", boundary)
	return bw.Flush()
}

// writeText is the human-readable part, after sendmail 8's.
func (r *Report) writeText(w *bufio.Writer, date time.Time) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("The original message was received at %s\n", r.Arrival.Format(time.RFC1123Z))
	from := r.Sender
	if from == "" {
		from = "<>"
	}
	p("from %s\n\n", from)
	switch r.Kind {
	case Failure:
		p("   ----- The following addresses had permanent fatal errors -----\n")
	case Delay:
		p("   **********************************************\n")
		p("   **      THIS IS A WARNING MESSAGE ONLY      **\n")
		p("   **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n")
		p("   **********************************************\n\n")
		p("   ----- The following addresses had transient non-fatal errors -----\n")
	case Success:
		p("   ----- The following addresses had successful delivery notifications -----\n")
	}
	for _, rc := range r.Recipients {
		p("<%s>\n", rc.Final)
		if rc.Reason != "" {
			p("    (reason: %s)\n", oneLine(rc.Reason))
		}
	}
	if r.Kind == Success {
		return
	}
	p("\n   ----- Transcript of session follows -----\n")
	for _, rc := range r.Recipients {
		if rc.RemoteMTA != "" {
			p("... while talking to %s:\n", rc.RemoteMTA)
		}
		text := rc.Diagnostic
		if text == "" {
			text = rc.Reason
		}
		p("<%s>... %s\n", rc.Final, oneLine(text))
	}
	if r.Kind == Delay {
		p("\nWarning: message still undelivered after %s\n", age(date.Sub(r.Arrival)))
		if !r.RetryUntil.IsZero() {
			p("Will keep trying until %s\n", r.RetryUntil.Format(time.RFC1123Z))
		}
	}
}

// writeHeader copies the header of a message, up to its empty line.
func writeHeader(w io.Writer, msg io.Reader) {
	br := bufio.NewReader(msg)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return
		}
		w.Write(line)
		if err != nil {
			w.Write([]byte("\n"))
			return
		}
	}
}

func charset(r *Report) string {
	for _, rc := range r.Recipients {
		for _, s := range []string{rc.Final, rc.Reason, rc.Diagnostic} {
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x80 {
					return "utf-8"
				}
			}
		}
	}
	return "us-ascii"
}

// age says a duration the way the warning's subject does: "4 hours".
func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// lastByte remembers the last byte written through it.
type lastByte struct {
	w    io.Writer
	last byte
}

func (l *lastByte) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.last = p[len(p)-1]
	}
	return l.w.Write(p)
}
