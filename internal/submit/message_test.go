package submit

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// written is m as WriteTo writes it.
func written(t *testing.T, m *Message) string {
	t.Helper()
	var b strings.Builder
	n, err := m.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, b.Len())
	}
	return b.String()
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		ignoreDots bool
		want       string // as WriteTo writes the message
	}{
		{name: "plain", in: "Subject: hi\n\nbody\n", want: "Subject: hi\n\nbody\n"},
		{name: "CRLF", in: "Subject: hi\r\n\r\nbody\r\n", want: "Subject: hi\n\nbody\n"},
		{
			// Postfix sendmail_fix_line_endings=always strips every CR
			// before the LF.
			name: "CR runs before LF",
			in:   "Subject: hi\r\r\n\r\nbody\r\r\r\n",
			want: "Subject: hi\n\nbody\n",
		},
		{name: "bare CR kept", in: "Subject: a\rb\n\nx\ry\n", want: "Subject: a\rb\n\nx\ry\n"},
		{name: "no final newline", in: "Subject: hi\n\nbody", want: "Subject: hi\n\nbody\n"},
		{name: "final CR without LF", in: "Subject: hi\n\nbody\r", want: "Subject: hi\n\nbody\n"},
		{name: "empty", in: "", want: "\n"},
		{name: "header only", in: "Subject: hi\n", want: "Subject: hi\n\n"},

		// The dot rule.
		{name: "dot ends the message", in: "Subject: hi\n\nbody\n.\nafter\n", want: "Subject: hi\n\nbody\n"},
		{name: "dot CRLF ends the message", in: "Subject: hi\r\n\r\nbody\r\n.\r\nafter\r\n", want: "Subject: hi\n\nbody\n"},
		{name: "dot at the end without newline", in: "Subject: hi\n\nbody\n.", want: "Subject: hi\n\nbody\n"},
		{name: "dot in the header", in: "Subject: hi\n.\nTo: a@b\n", want: "Subject: hi\n\n"},
		{name: "dot first", in: ".\nSubject: hi\n", want: "\n"},
		{name: "dot ignored with -i", in: "Subject: hi\n\nbody\n.\nafter\n", ignoreDots: true, want: "Subject: hi\n\nbody\n.\nafter\n"},
		{
			// Postfix and Exim keep a leading "..", unlike sendmail
			// 8's collect(), which takes one dot off.
			name: "double dot kept",
			in:   "Subject: hi\n\n..x\n..\n...\n",
			want: "Subject: hi\n\n..x\n..\n...\n",
		},
		{name: "dot with a space is text", in: "Subject: hi\n\n. \n.x\n", want: "Subject: hi\n\n. \n.x\n"},

		// The mbox From_ line (Postfix skips them, with any ">").
		{
			name: "mbox From line",
			in:   "From root@example.org Sat Nov 28 03:58:56 2026\nSubject: hi\n\nbody\n",
			want: "Subject: hi\n\nbody\n",
		},
		{name: "several From lines", in: "From a\n>From b\n>>From c\nSubject: hi\n\nx\n", want: "Subject: hi\n\nx\n"},
		{name: "From line in the body kept", in: "Subject: hi\n\nFrom me\n", want: "Subject: hi\n\nFrom me\n"},
		{name: "From line later in the header", in: "Subject: hi\nFrom me\n", want: "Subject: hi\n\nFrom me\n"},
		{name: "From: field kept", in: "From: a@b\n\nx\n", want: "From: a@b\n\nx\n"},

		// Where the header ends.
		{name: "no header", in: "hello world\nsecond line\n", want: "\nhello world\nsecond line\n"},
		{name: "blank first line", in: "\nSubject: hi\n", want: "\nSubject: hi\n"},
		{name: "continuation first", in: " indented\nSubject: hi\n", want: "\n indented\nSubject: hi\n"},
		{
			// Postfix inserts the empty line before a line that is no
			// field.
			name: "non-field line ends the header",
			in:   "Subject: hi\nnot a header\nTo: a@b\n",
			want: "Subject: hi\n\nnot a header\nTo: a@b\n",
		},
		{name: "space before the colon (obs-optional)", in: "Subject : hi\n\nx\n", want: "Subject : hi\n\nx\n"},
		{name: "tab before the colon", in: "Subject\t: hi\n\nx\n", want: "Subject\t: hi\n\nx\n"},
		{name: "space in the name", in: "Sub ject: hi\n\nx\n", want: "\nSub ject: hi\n\nx\n"},
		{name: "no name", in: ": hi\n", want: "\n: hi\n"},
		{name: "8-bit name", in: "Sübject: hi\n", want: "\nSübject: hi\n"},
		{name: "folded field", in: "Subject: a\n b\n\tc\n\nx\n", want: "Subject: a\n b\n\tc\n\nx\n"},
		{name: "white-space-only continuation", in: "Subject: a\n \nTo: b\n\nx\n", want: "Subject: a\n \nTo: b\n\nx\n"},
		{name: "empty value", in: "Subject:\n\nx\n", want: "Subject:\n\nx\n"},
	}
	for _, tt := range tests {
		m, err := ReadMessage(strings.NewReader(tt.in), tt.ignoreDots, 0)
		if err != nil {
			t.Errorf("%s: ReadMessage: %v", tt.name, err)
			continue
		}
		if got := written(t, m); got != tt.want {
			t.Errorf("%s: ReadMessage(%q) wrote\n%q\nwant\n%q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestReadMessageRoundTrip(t *testing.T) {
	in := "Return-Path: <list-bounces@example.org>\r\n" +
		"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n" +
		"\tby mail.example.net (Postfix) with ESMTPS id 4Fq9\r\n" +
		"\tfor <bob@example.net>; Sat, 28 Nov 2026 03:58:56 +0000 (UTC)\r\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1;\r\n" +
		"  h=From:To:Subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n" +
		"From:   \"Doe, Jane\" <jane@example.org>\r\n" +
		"To: bob@example.net,\r\n" +
		"    carol@example.net\r\n" +
		"Subject : =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"X-Empty:\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Grüße aus München.\r\n" +
		"\r\n" +
		"..a line that began with two dots\r\n" +
		"From the body, not a separator\r\n" +
		"\ttrailing tab\t\r\n"
	m, err := ReadMessage(strings.NewReader(in), true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := written(t, m), strings.ReplaceAll(in, "\r\n", "\n"); got != want {
		t.Errorf("round trip changed the message:\n%q\nwant\n%q", got, want)
	}
}

func TestReadMessageLimit(t *testing.T) {
	msg := "Subject: hi\n\n" + strings.Repeat("0123456789\n", 10) // 13 + 110 bytes
	tests := []struct {
		name    string
		in      string
		limit   int64
		tooBig  bool
		ignored bool
	}{
		{name: "no limit", in: msg, limit: 0},
		{name: "exactly the limit", in: msg, limit: int64(len(msg))},
		{name: "one byte over", in: msg, limit: int64(len(msg)) - 1, tooBig: true},
		{name: "counted with LF endings", in: strings.ReplaceAll(msg, "\n", "\r\n"), limit: int64(len(msg))},
		{name: "dot line not counted", in: msg + ".\n", limit: int64(len(msg))},
		{name: "From_ line not counted", in: "From x\n" + msg, limit: int64(len(msg))},
		{name: "long line", in: "Subject: " + strings.Repeat("x", 1<<20), limit: 1000, tooBig: true},
		{name: "long CR run", in: "Subject: hi" + strings.Repeat("\r", 1<<20) + "\n", limit: 100},
	}
	for _, tt := range tests {
		r := &countingReader{r: strings.NewReader(tt.in)}
		m, err := ReadMessage(r, false, tt.limit)
		if tt.tooBig {
			if err != ErrTooBig {
				t.Errorf("%s: ReadMessage = %v, want ErrTooBig", tt.name, err)
			}
		} else if err != nil || m == nil {
			t.Errorf("%s: ReadMessage: %v", tt.name, err)
		}
		if tt.tooBig && r.n != int64(len(tt.in)) {
			t.Errorf("%s: read %d of %d bytes, want all read and discarded", tt.name, r.n, len(tt.in))
		}
	}
}

func TestReadMessageTooBigStopsAtDot(t *testing.T) {
	// The rest of a message over the limit is read up to its "." line,
	// and no further.
	in := "Subject: hi\n\n" + strings.Repeat("x", 100) + "\n..\n.\r\n"
	after := &countingReader{r: strings.NewReader(strings.Repeat("next message\n", 1<<17))}
	if _, err := ReadMessage(io.MultiReader(strings.NewReader(in), after), false, 20); err != ErrTooBig {
		t.Fatalf("ReadMessage = %v, want ErrTooBig", err)
	}
	if after.n >= 1<<20 {
		t.Errorf("read %d bytes past the \".\" line", after.n)
	}
}

func TestReadMessageReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("Subject: hi\n"), errReader{boom})
	if _, err := ReadMessage(r, false, 0); !errors.Is(err, boom) {
		t.Errorf("ReadMessage = %v, want %v", err, boom)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func read(t *testing.T, in string) *Message {
	t.Helper()
	m, err := ReadMessage(strings.NewReader(in), true, 0)
	if err != nil {
		t.Fatalf("ReadMessage(%q): %v", in, err)
	}
	return m
}

func TestGet(t *testing.T) {
	m := read(t, "Subject: first\n  line two\nsubject: second\nX-Tab:\tvalue \t\nX-Empty:\nX-Obs : old\n\nbody\n")
	tests := []struct{ name, want string }{
		{"Subject", "first  line two"},
		{"SUBJECT", "first  line two"},
		{"X-Tab", "value"},
		{"X-Empty", ""},
		{"X-Obs", "old"},
		{"Missing", ""},
	}
	for _, tt := range tests {
		if got := m.Get(tt.name); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if !m.Has("x-empty") || m.Has("Missing") || m.Has("body") {
		t.Errorf("Has: wrong answer")
	}
}

func TestRecipients(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string
		err    string // in the error, when one is expected
	}{
		{name: "To Cc Bcc", header: "To: a@x\nCc: b@x\nBcc: c@x\nSubject: d@x\n", want: []string{"a@x", "b@x", "c@x"}},
		{name: "list", header: "To: a@x, b@x,c@x\n", want: []string{"a@x", "b@x", "c@x"}},
		{name: "display names", header: "To: Alice <a@x>, \"Doe, John\" <jd@x>, =?utf-8?q?Jos=C3=A9?= <j@x>\n", want: []string{"a@x", "jd@x", "j@x"}},
		{name: "comments", header: "To: a@x (Alice), (boss) b@x, c(x)@(y)x\n", want: []string{"a@x", "b@x", "c@x"}},
		{name: "group", header: "To: Team: a@x, Bob <b@x>;, c@x\n", want: []string{"a@x", "b@x", "c@x"}},
		{name: "empty group", header: "To: undisclosed-recipients:;\n", want: nil},
		{name: "group without semicolon", header: "To: Team: a@x, b@x\n", want: []string{"a@x", "b@x"}},
		{name: "bare local names (sendmail)", header: "To: root, Postmaster <postmaster>\n", want: []string{"root", "postmaster"}},
		{name: "quoted local part", header: "To: \"john doe\"@x, \"a\\\"b\"@x\n", want: []string{"\"john doe\"@x", "\"a\\\"b\"@x"}},
		{name: "folded quoted display name", header: "To: \"Doe,\n\tJohn\" <j@x>\n", want: []string{"j@x"}},
		{name: "tab in a quoted local part", header: "To: \"a\tb\"@x\n", err: "malformed address"},
		{name: "domain literal", header: "To: u@[192.0.2.1]\n", want: []string{"u@[192.0.2.1]"}},
		{name: "obsolete route", header: "To: <@relay.x,@r2.x:u@x>\n", want: []string{"u@x"}},
		{name: "obsolete spacing", header: "To: john . doe @ example . org\n", want: []string{"john.doe@example.org"}},
		{name: "empty elements", header: "To: , a@x,, ,b@x,\n", want: []string{"a@x", "b@x"}},
		{name: "null address", header: "To: <>, a@x\n", want: []string{"a@x"}},
		{name: "UTF-8 (RFC 6532)", header: "To: José <josé@münchen.example>\n", want: []string{"josé@münchen.example"}},
		{name: "folded", header: "To: a@x,\n  b@x,\n\tc@x\n", want: []string{"a@x", "b@x", "c@x"}},
		{name: "several fields, each once", header: "To: a@x\nCc: b@x, a@x\nTo: c@x\nCC: b@x\n", want: []string{"a@x", "b@x", "c@x"}},
		{name: "empty field", header: "To:\nCc: a@x\n", want: []string{"a@x"}},
		{name: "none", header: "Subject: hi\n", want: nil},
		{
			// sendmail 8 and Postfix: Resent- fields replace the rest.
			name:   "Resent-To wins",
			header: "To: a@x\nCc: b@x\nResent-From: me@x\nResent-To: c@x\nResent-Cc: d@x\nResent-Bcc: e@x\n",
			want:   []string{"c@x", "d@x", "e@x"},
		},
		{name: "Resent-Bcc alone", header: "To: a@x\nResent-Bcc: e@x\n", want: []string{"e@x"}},
		{name: "Resent-From alone does not", header: "To: a@x\nResent-From: me@x\n", want: []string{"a@x"}},
		{name: "missing angle", header: "Subject: x\nTo: <a@x\n", err: "To header: missing '>'"},
		{name: "missing comma", header: "Cc: a@x b@x\n", err: "Cc header"},
		{name: "unterminated comment", header: "To: a@x (oops\n", err: "To header: unterminated comment"},
		{name: "unterminated quote", header: "Bcc: \"oops@x\n", err: "Bcc header: unterminated"},
		{name: "two words", header: "To: John Smith\n", err: "malformed address"},
		{name: "no domain", header: "To: a@\n", err: "malformed domain"},
		{name: "nested group", header: "To: A: B: c@x;;\n", err: "To header"},
		{name: "stray bracket", header: "To: a@x>\n", err: "To header"},
		{name: "control character", header: "To: a\x01@x\n", err: "To header"},
		{name: "bad Resent-Cc", header: "To: a@x\nResent-Cc: <\n", err: "Resent-Cc header"},
	}
	for _, tt := range tests {
		m := read(t, tt.header+"\nbody\n")
		got, err := m.Recipients()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: Recipients() = %q, %v; want error %q", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Recipients() = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestRemoveBcc(t *testing.T) {
	m := read(t, "To: a@x\nBcc: b@x,\n  c@x,\n\td@x\nSubject: hi\nbcc: e@x\nResent-Bcc: f@x\n  g@x\nCc: h@x\n\nBcc: in the body\n")
	m.RemoveBcc()
	want := "To: a@x\nSubject: hi\nCc: h@x\n\nBcc: in the body\n"
	if got := written(t, m); got != want {
		t.Errorf("after RemoveBcc:\n%q\nwant\n%q", got, want)
	}
}

func TestAddIfMissingAndPrepend(t *testing.T) {
	m := read(t, "subject: hi\nTo: a@x\n\nbody\n")
	m.AddIfMissing("Subject", "not added")
	m.AddIfMissing("Date", "Sat, 28 Nov 2026 03:58:56 +0000")
	m.AddIfMissing("X-Folded", "one\ntwo\n  three\n\n\r\nfour")
	m.Prepend("Received", Received("mail.example.org", 1000, "4Fq9", time.Date(2026, 11, 28, 3, 58, 56, 0, time.UTC), ""))
	want := "Received: by mail.example.org (yubin, from userid 1000)\n\tid 4Fq9; Sat, 28 Nov 2026 03:58:56 +0000\n" +
		"subject: hi\nTo: a@x\n" +
		"Date: Sat, 28 Nov 2026 03:58:56 +0000\n" +
		"X-Folded: one\n\ttwo\n  three\n\tfour\n" +
		"\nbody\n"
	if got := written(t, m); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if got := m.Get("Received"); got != "by mail.example.org (yubin, from userid 1000)\tid 4Fq9; Sat, 28 Nov 2026 03:58:56 +0000" {
		t.Errorf("Get(Received) = %q", got)
	}

	// Into a message without a header: the fields go before the body.
	m = read(t, "just text\n")
	m.AddIfMissing("From", "root@example.org")
	m.AddIfMissing("Empty", "")
	if got, want := written(t, m), "From: root@example.org\nEmpty:\n\njust text\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHas8Bit(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"Subject: hi\n\nascii\n", false},
		{"Subject: Grüße\n\nascii\n", true},
		{"Subject: hi\n\nGrüße\n", true},
		{"Subject: hi\n\n\x7f\n", false},
	}
	for _, tt := range tests {
		if got := read(t, tt.in).Has8Bit(); got != tt.want {
			t.Errorf("Has8Bit(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDateHeader(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 28, 3, 58, 56, 0, time.UTC), "Sat, 28 Nov 2026 03:58:56 +0000"},
		{time.Date(2026, 1, 5, 23, 4, 5, 999, time.FixedZone("JST", 9*3600)), "Mon, 05 Jan 2026 23:04:05 +0900"},
		{time.Date(2026, 7, 1, 0, 0, 0, 0, time.FixedZone("", -(3*3600+1800))), "Wed, 01 Jul 2026 00:00:00 -0330"},
	}
	for _, tt := range tests {
		if got := DateHeader(tt.t); got != tt.want {
			t.Errorf("DateHeader(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestMessageID(t *testing.T) {
	jst := time.FixedZone("JST", 9*3600)
	if got, want := messageID(time.Date(2026, 11, 28, 12, 58, 56, 0, jst), "4Fq9", "mail.example.org"),
		"<20261128035856.4Fq9@mail.example.org>"; got != want {
		t.Errorf("messageID = %q, want %q", got, want)
	}
	if got := MessageID("4Fq9", "mail.example.org"); !regexp.MustCompile(`^<\d{14}\.4Fq9@mail\.example\.org>$`).MatchString(got) {
		t.Errorf("MessageID = %q", got)
	}
}

func TestFromHeader(t *testing.T) {
	tests := []struct {
		name, fullName, want string
	}{
		{"no name", "", "root@example.org"},
		{"blank name", "  ", "root@example.org"},
		{"atoms", "Cron Daemon", "Cron Daemon <root@example.org>"},
		{"one atom", "CronDaemon", "CronDaemon <root@example.org>"},
		{"dot needs quotes", "J. Doe", `"J. Doe" <root@example.org>`},
		{"comma needs quotes", "Doe, Jane", `"Doe, Jane" <root@example.org>`},
		{"quote and backslash escaped", `Say "hi" \o/`, `"Say \"hi\" \\o/" <root@example.org>`},
		{"newline becomes space", "Cron\nDaemon\r\n", "Cron Daemon <root@example.org>"},
		{"non-ASCII, Q", "José Núñez", "=?utf-8?q?Jos=C3=A9_N=C3=BA=C3=B1ez?= <root@example.org>"},
		{"non-ASCII with specials, B", "Núñez, José", "=?utf-8?b?TsO6w7FleiwgSm9zw6k=?= <root@example.org>"},
		{"control character", "a\x01b", "=?utf-8?q?a=01b?= <root@example.org>"},
	}
	for _, tt := range tests {
		if got := FromHeader(tt.fullName, "root@example.org"); got != tt.want {
			t.Errorf("%s: FromHeader(%q) = %q, want %q", tt.name, tt.fullName, got, tt.want)
		}
	}
}

func TestFromHeaderParsesBack(t *testing.T) {
	// Whatever the name, the From field's address is the one given.
	for _, name := range []string{"Cron Daemon", "J. Doe", `Say "hi" \o/`, "Núñez, José", "(x) <y> @z;", "用户"} {
		m := read(t, "From: "+FromHeader(name, "root@example.org")+"\n\n")
		m.fields[0].name = "To" // Recipients reads To
		got, err := m.Recipients()
		if err != nil || len(got) != 1 || got[0] != "root@example.org" {
			t.Errorf("FromHeader(%q): parsed back as %q, %v", name, got, err)
		}
	}
}

func TestReceived(t *testing.T) {
	at := time.Date(2026, 11, 28, 3, 58, 56, 0, time.UTC)
	tests := []struct{ name, rcpt, want string }{
		{"several recipients", "", "by mail.example.org (yubin, from userid 0)\n\tid 4Fq9; Sat, 28 Nov 2026 03:58:56 +0000"},
		{"one recipient", "bob@example.net", "by mail.example.org (yubin, from userid 0)\n\tid 4Fq9\n\tfor <bob@example.net>; Sat, 28 Nov 2026 03:58:56 +0000"},
	}
	for _, tt := range tests {
		if got := Received("mail.example.org", 0, "4Fq9", at, tt.rcpt); got != tt.want {
			t.Errorf("%s: Received = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, ignoreDots bool, limit uint16) {
		m, err := ReadMessage(bytes.NewReader(data), ignoreDots, int64(limit))
		if err == ErrTooBig && limit > 0 {
			return
		}
		if err != nil {
			t.Fatalf("ReadMessage: %v", err)
		}
		var out bytes.Buffer
		if _, err := m.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if limit > 0 && out.Len() > int(limit)+1 { // +1: the empty line WriteTo may add
			t.Fatalf("%d bytes written under a limit of %d", out.Len(), limit)
		}
		// What WriteTo writes reads back as the same message.
		again, err := ReadMessage(bytes.NewReader(out.Bytes()), true, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out2 bytes.Buffer
		again.WriteTo(&out2)
		if !bytes.Equal(out.Bytes(), out2.Bytes()) {
			t.Fatalf("not stable:\n%q\n%q", out.Bytes(), out2.Bytes())
		}
		m.Recipients()
		m.Get("To")
		m.RemoveBcc()
		m.Prepend("Received", "by x\n\tid y; z")
		m.AddIfMissing("Date", "now")
		m.Has8Bit()
	})
}
