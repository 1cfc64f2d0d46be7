// Package mailq formats the queue listing that mailq(1) and sendmail -bp print,
// in the layouts of Postfix's postqueue -p and postqueue -j, so that the eyes
// and the scripts that know Postfix's listing read ours unchanged.
//
// # Text (Write)
//
//	----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------
//	0SZ3G5H0001ABC*       2301 Wed Mar  5 10:02:03 alice@example.org
//	                                               bob@example.net
//	               (connect to mx.example.com[192.0.2.1]:25: Connection timed out)
//	                                               carol@example.com
//
//	-- 2 Kbytes in 1 Request.
//
// A heading, then per message: the queue ID with "*" when a process holds its
// delivery lock (Postfix's "active"), the message size in bytes, the arrival
// time in local time (asctime(3) without the year, the day padded with a
// space), the sender ("MAILER-DAEMON" for the null sender <>); then one line per
// recipient still to deliver. Recipients not yet attempted come first; deferred
// ones follow, each preceded by its last reply in parentheses, right-aligned to
// end at column 78, on a line of its own; a reply the same as the one before is
// not repeated, and a recipient without a reply after one with a reply gets
// "(reason unavailable)", as in Postfix (postqueue/showq_compat.c). A reason
// longer than 76 characters starts at column 1 and runs on unfolded: scripts
// match "(...)" on one line. Delivered and bounced recipients are not shown.
// Messages are separated by a blank line; the summary counts message sizes in
// whole Kbytes (rounded down, as Postfix does: a 900-byte queue is "0 Kbytes")
// and says "Request" for one message, "Requests" for more. An empty queue is
// the one line "Mail queue is empty".
//
// Columns: Postfix's default layout ("-Queue ID-  --Size-- ----Arrival
// Time---- -Sender/Recipient-------", format "%-11s %7s %-20s %s") is made for
// its 10–12 character short IDs; our IDs are 14 characters, 15 with the "*".
// Rather than invent a wider variant, we use the layout Postfix itself prints
// for long queue IDs (enable_long_queue_ids = yes, format "%-17s %8s %-19s %s"):
// it is the short one with the ID column widened to 17, the size column
// widened to 8, and the date column cut to 19 so that, unlike the short layout,
// every value sits under its heading. Parsers of Postfix listings already know
// it. Recipient lines are indented 47 columns instead of 41.
//
// Control characters in addresses and replies become "?" (Postfix's
// printable()); a multi-line reply is joined into one line.
//
// # JSON (WriteJSON)
//
// One object per message and per line, keys and spacing as postqueue -j
// (postqueue/showq_json.c) prints them:
//
//	{"queue_name": "deferred", "queue_id": "0SZ3G5H0001ABC", "arrival_time": 1741136523, "message_size": 2301, "forced_expire": false, "sender": "alice@example.org", "recipients": [{"address": "bob@example.net"}, {"address": "carol@example.com", "delay_reason": "connect to ..."}]}
//
// queue_name is "active" when a process holds the message's delivery lock,
// "deferred" when any of its recipients has been attempted, else "incoming".
// arrival_time is in Unix seconds; forced_expire is always false (yubin has no
// postsuper -e). The recipients and their reasons are those of the text listing,
// in the same order; "delay_reason" is left out when there is none. A
// recipient whose sender has been warned of the delay (delay_warning_time)
// has "delay_warned", the Unix second the warning was queued: our addition,
// as yubin warns per recipient where Postfix keeps one time per message. An
// empty queue prints nothing.
package mailq

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"yubin/internal/queue"
)

// The layout of Postfix's listing for long queue IDs (showq_compat.c
// L_STRING_FORMAT, L_SENDER_FORMAT, L_HEADINGS); see the package comment.
const (
	lineFormat   = "%-17s %8s %-19s %s\n"
	senderFormat = "%-17s %8d %19.19s %s\n"
	// asctime(3) up to the seconds: "Wed Mar  5 10:02:03".
	arrivalLayout = "Mon Jan _2 15:04:05"
)

var headings = []any{"----Queue ID-----", "--Size--", "---Arrival Time----", "--Sender/Recipient------"}

// reasonEnd is the column a deferral reason's ")" ends at: Postfix pads
// "(reason)" with 76 - len(reason) spaces.
const reasonEnd = 76

// nullSender is how the null sender <> is shown (Postfix's
// empty_address_recipient default).
const nullSender = "MAILER-DAEMON"

// Write prints the listing of envs, in their order, in the layout of Postfix's
// mailq (see the package comment). It returns the first write error.
func Write(w io.Writer, envs []*queue.Envelope) error {
	bw := bufio.NewWriter(w)
	if len(envs) == 0 {
		bw.WriteString("Mail queue is empty\n")
		return bw.Flush()
	}
	fmt.Fprintf(bw, lineFormat, headings...)
	var total int64
	for i, env := range envs {
		if i > 0 {
			bw.WriteByte('\n')
		}
		id := env.ID
		switch {
		case env.Active:
			id += "*"
		case env.Held:
			id += "!" // postqueue's mark for the hold queue
		}
		fmt.Fprintf(bw, senderFormat, id, env.Size,
			env.Arrival.Local().Format(arrivalLayout), sender(env))
		shown := "" // the reason of the recipient above, as Postfix tracks it
		for _, r := range waiting(env) {
			if r.reason != shown {
				shown = r.reason
				text := r.reason
				if text == "" {
					text = "reason unavailable"
				}
				pad := max(reasonEnd-utf8.RuneCountInString(text), 0)
				fmt.Fprintf(bw, "%*s(%s)\n", pad, "", text)
			}
			fmt.Fprintf(bw, lineFormat, "", "", "", r.addr)
		}
		total += env.Size
	}
	n := len(envs)
	s := "s"
	if n == 1 {
		s = ""
	}
	fmt.Fprintf(bw, "\n-- %d Kbytes in %d Request%s.\n", total/1024, n, s)
	return bw.Flush()
}

// WriteJSON prints one JSON object per message and per line, in the format
// of Postfix's postqueue -j (see the package comment). It returns the first
// write error.
func WriteJSON(w io.Writer, envs []*queue.Envelope) error {
	bw := bufio.NewWriter(w)
	for _, env := range envs {
		fmt.Fprintf(bw, `{"queue_name": %s, "queue_id": %s, "arrival_time": %d, "message_size": %d, "forced_expire": false, "sender": %s, "recipients": [`,
			jsonString(queueName(env)), jsonString(env.ID), env.Arrival.Unix(), env.Size, jsonString(sender(env)))
		for i, r := range waiting(env) {
			if i > 0 {
				bw.WriteString(", ")
			}
			fmt.Fprintf(bw, `{"address": %s`, jsonString(r.addr))
			if r.reason != "" {
				fmt.Fprintf(bw, `, "delay_reason": %s`, jsonString(r.reason))
			}
			if !r.warned.IsZero() {
				fmt.Fprintf(bw, `, "delay_warned": %d`, r.warned.Unix())
			}
			bw.WriteByte('}')
		}
		bw.WriteString("]}\n")
	}
	return bw.Flush()
}

// queueName is the Postfix queue a message would be in.
func queueName(env *queue.Envelope) string {
	if env.Active {
		return "active"
	}
	if env.Held {
		return "hold"
	}
	for _, rc := range env.Recipients {
		if rc.Attempts > 0 {
			return "deferred"
		}
	}
	return "incoming"
}

func sender(env *queue.Envelope) string {
	if env.From == "" {
		return nullSender
	}
	return printable(env.From)
}

// listed is a recipient as the listing shows it.
type listed struct {
	addr, reason string
	warned       time.Time
}

// waiting returns the recipients still to deliver: those without a reason
// first, then those with one, each group in envelope order. Postfix lists the
// deferred ones first (its defer log comes before the queue file); putting
// them last spares every message with both kinds a "(reason unavailable)"
// line above recipients that simply have not been tried yet.
func waiting(env *queue.Envelope) []listed {
	var fresh, deferred []listed
	for _, rc := range env.Recipients {
		if rc.State.Done() {
			continue
		}
		r := listed{addr: printable(rc.Addr), warned: rc.Warned}
		if rc.Attempts > 0 {
			r.reason = oneLine(rc.LastReply)
		}
		if r.reason == "" {
			fresh = append(fresh, r)
		} else {
			deferred = append(deferred, r)
		}
	}
	return append(fresh, deferred...)
}

// printable replaces control characters and invalid UTF-8 with "?", so a
// hostile address cannot move the cursor or forge lines of the listing.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// oneLine joins a multi-line SMTP reply ("550-..." CRLF "550 ...") into one
// line: every run of white space becomes one space.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}

// jsonString quotes s as a JSON string, leaving <, > and & as they are (an
// address like <> must read as itself to a script).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// Print lists queue q on w, as text or JSON. A message that cannot be read is
// reported on errw, one line each, and the listing goes on; the error is for
// a queue that cannot be listed at all.
func Print(w, errw io.Writer, q *queue.Queue, asJSON bool) error {
	envs, problems, err := q.List()
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(errw, "mailq: %v\n", p)
	}
	if held := q.HeldIDs(); len(held) > 0 {
		for _, env := range envs {
			env.Held = held[env.ID]
		}
	}
	if asJSON {
		return WriteJSON(w, envs)
	}
	return Write(w, envs)
}
