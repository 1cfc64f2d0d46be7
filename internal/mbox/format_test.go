package mbox

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// quoteReference is mboxo quoting done the plain way, a line at a time.
func quoteReference(msg []byte) []byte {
	var out []byte
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line = msg[:i+1]
		}
		msg = msg[len(line):]
		if bytes.HasPrefix(line, []byte("From ")) {
			out = append(out, '>')
		}
		out = append(out, line...)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

// FuzzQuote writes a message through the quoting writer in chunks of every
// size and checks the result against the line-at-a-time reference: "From "
// split across writes, lines without newline, empty input.
func FuzzQuote(f *testing.F) {
	f.Add([]byte("Subject: x\n\nFrom here\n>From there\nFrom\nFrom:\n"), uint8(1))
	f.Add([]byte("From "), uint8(3))
	f.Add([]byte("Fro"), uint8(2))
	f.Add([]byte("\nFrom \nFrom \n"), uint8(4))
	f.Fuzz(func(t *testing.T, msg []byte, chunk uint8) {
		want := quoteReference(msg)
		size := int(chunk)%16 + 1
		var got bytes.Buffer
		q := newQuoter(&got)
		for p := msg; len(p) > 0; {
			n := min(size, len(p))
			if w, err := q.Write(p[:n]); w != n || err != nil {
				t.Fatalf("Write = %d, %v", w, err)
			}
			p = p[n:]
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("chunks of %d: %q\ngot  %q\nwant %q", size, msg, got.Bytes(), want)
		}
		for _, line := range strings.Split(got.String(), "\n") {
			if strings.HasPrefix(line, "From ") {
				t.Fatalf("unquoted From_ line in %q", got.String())
			}
		}
	})
}

func TestEnvelopeLines(t *testing.T) {
	tm := time.Date(2025, 1, 9, 13, 5, 0, 0, time.UTC)
	tests := []struct {
		name       string
		env        Envelope
		from, head string
	}{
		{"full", Envelope{Sender: "a@x.org", Recipient: "b@y.org", OriginalRecipient: "c@y.org", Time: tm},
			"From a@x.org Thu Jan  9 13:05:00 2025\n",
			"Return-Path: <a@x.org>\nX-Original-To: c@y.org\nDelivered-To: b@y.org\n"},
		{"null sender", Envelope{Time: tm},
			"From MAILER-DAEMON Thu Jan  9 13:05:00 2025\n",
			"Return-Path: <>\n"},
		{"quoted local part", Envelope{Sender: `"john doe"@x.org`, Time: tm},
			"From \"john_doe\"@x.org Thu Jan  9 13:05:00 2025\n",
			"Return-Path: <\"john doe\"@x.org>\n"},
		{"injection", Envelope{Sender: "a@x.org\nFrom evil", Recipient: "b@y.org\r\nBcc: c", Time: tm},
			"From a@x.org_From_evil Thu Jan  9 13:05:00 2025\n",
			"Return-Path: <a@x.org_From evil>\nDelivered-To: b@y.org__Bcc: c\n"},
	}
	for _, tt := range tests {
		if got := tt.env.FromLine(); got != tt.from {
			t.Errorf("%s: FromLine = %q, want %q", tt.name, got, tt.from)
		}
		if got := tt.env.Header(); got != tt.head {
			t.Errorf("%s: Header = %q, want %q", tt.name, got, tt.head)
		}
	}
}
