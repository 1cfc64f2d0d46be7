package mbox

import (
	"bytes"
	"io"
	"strings"
	"time"
)

// Envelope is the part of the SMTP envelope that a local delivery writes in
// front of the message, as Postfix's local(8) does for files and commands.
type Envelope struct {
	// Sender is the envelope sender, local@domain; "" is the null sender <>.
	Sender string
	// Recipient is the final envelope recipient (after alias and .forward
	// expansion), written as Delivered-To; "" leaves the header out.
	Recipient string
	// OriginalRecipient is the recipient as it reached us, before any
	// rewriting or aliasing, written as X-Original-To; "" leaves it out.
	OriginalRecipient string
	// Time stamps the From_ line; zero means now, in local time (asctime of
	// localtime, as Postfix and mail.local write it).
	Time time.Time
}

// FromLine returns the mbox separator line, newline included:
//
//	From sender Thu Nov 28 04:16:31 2024
//
// The null sender is written MAILER-DAEMON. One space separates the fields,
// as RFC 4155 describes the line (Postfix writes two before the date; readers
// accept both). Spaces and control characters in the sender become '_', so
// the line always splits into the same three fields.
func (e Envelope) FromLine() string {
	s := e.Sender
	if s == "" {
		s = "MAILER-DAEMON"
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	return "From " + censor(s, true) + " " + t.Format(time.ANSIC) + "\n"
}

// Header returns the trace header lines that local delivery prepends, in
// Postfix's order (mail_copy.c): Return-Path, X-Original-To, Delivered-To.
// Return-Path is always there (<> for the null sender); the other two only
// when their address is known.
func (e Envelope) Header() string {
	var b strings.Builder
	b.WriteString("Return-Path: <" + censor(e.Sender, false) + ">\n")
	if e.OriginalRecipient != "" {
		b.WriteString("X-Original-To: " + censor(e.OriginalRecipient, false) + "\n")
	}
	if e.Recipient != "" {
		b.WriteString("Delivered-To: " + censor(e.Recipient, false) + "\n")
	}
	return b.String()
}

// censor replaces control characters (and, for the From_ line, spaces) with
// '_'. Envelope addresses never hold them (package address refuses them);
// this only makes sure a bad caller cannot start a new header or message.
func censor(s string, space bool) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (space && r == ' ') {
			return '_'
		}
		return r
	}, s)
}

// quoter copies a message into an mbox, mboxo style: a '>' goes in front of
// every line that begins with "From " (and of no other line), and a final
// line without its newline gets one. Lines may be split across Write calls
// anywhere.
type quoter struct {
	w       io.Writer
	bol     bool   // at the beginning of a line
	pending []byte // the start of a line, still a prefix of "From "
	wrote   bool   // something was written
	lastNL  bool   // the last byte written was a newline
}

const fromSpace = "From "

func newQuoter(w io.Writer) *quoter {
	return &quoter{w: w, bol: true, pending: make([]byte, 0, len(fromSpace))}
}

func (q *quoter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if q.bol {
			// Hold back the start of the line until it is "From " or
			// clearly not.
			c := p[0]
			if c == fromSpace[len(q.pending)] {
				q.pending = append(q.pending, c)
				p = p[1:]
				if len(q.pending) == len(fromSpace) {
					if err := q.put([]byte(">" + fromSpace)); err != nil {
						return 0, err
					}
					q.pending = q.pending[:0]
					q.bol = false
				}
				continue
			}
			if err := q.flushPending(); err != nil {
				return 0, err
			}
			q.bol = false
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if err := q.put(p); err != nil {
				return 0, err
			}
			break
		}
		if err := q.put(p[:i+1]); err != nil {
			return 0, err
		}
		p = p[i+1:]
		q.bol = true
	}
	return n, nil
}

// Close writes what is held back and ends the last line. It does not close
// the underlying writer.
func (q *quoter) Close() error {
	if err := q.flushPending(); err != nil {
		return err
	}
	if q.wrote && !q.lastNL {
		return q.put([]byte{'\n'})
	}
	return nil
}

func (q *quoter) flushPending() error {
	if len(q.pending) == 0 {
		return nil
	}
	err := q.put(q.pending)
	q.pending = q.pending[:0]
	return err
}

func (q *quoter) put(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := q.w.Write(p); err != nil {
		return err
	}
	q.wrote = true
	q.lastNL = p[len(p)-1] == '\n'
	return nil
}
