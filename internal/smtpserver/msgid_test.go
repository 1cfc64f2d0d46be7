package smtpserver

import (
	"bytes"
	"strings"
	"testing"
)

func TestHeaderTapMessageID(t *testing.T) {
	for _, tc := range []struct{ name, msg, want string }{
		{"plain", "Subject: x\nMessage-ID: <1@a.example>\n\nbody\n", "<1@a.example>"},
		{"any case", "message-id:<2@a.example>\n\n", "<2@a.example>"},
		{"space before colon", "Message-ID : <3@a.example>\n\n", "<3@a.example>"},
		{"folded", "Message-ID:\n <4@a.example>\nSubject: y\n\n", "<4@a.example>"},
		{"first of two", "Message-ID: <5@a>\nMessage-ID: <6@a>\n\n", "<5@a>"},
		{"none", "Subject: x\n\nMessage-ID: <in the body>\n", ""},
		{"no body", "Message-ID: <7@a.example>", "<7@a.example>"},
		{"resent is not it", "Resent-Message-ID: <8@a>\n\n", ""},
		{"continuation of another field", "Subject: x\n Message-ID: <9@a>\n\n", ""},
		{"beyond the limit", "X: " + strings.Repeat("y", maxHeaderTap) + "\nMessage-ID: <10@a>\n\n", ""},
	} {
		for _, size := range []int{1, 2, 7, len(tc.msg)} {
			var out bytes.Buffer
			tap := &headerTap{w: &out}
			for p := tc.msg; len(p) > 0; {
				n := min(size, len(p))
				if m, err := tap.Write([]byte(p[:n])); m != n || err != nil {
					t.Fatalf("%s: Write = %d, %v", tc.name, m, err)
				}
				p = p[n:]
			}
			if got := tap.messageID(); got != tc.want {
				t.Errorf("%s, writes of %d: %q, want %q", tc.name, size, got, tc.want)
			}
			if out.String() != tc.msg {
				t.Errorf("%s, writes of %d: passed on %q", tc.name, size, out.String())
			}
		}
	}
}

// Whatever a client sends, the Message-ID for the log is one line, and
// all of the message passes through.
func FuzzHeaderTap(f *testing.F) {
	f.Add([]byte("Message-ID:\n <1@a>\n\n"), uint8(3))
	f.Add([]byte("\n\nMessage-ID: <2@a>"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		size := int(step%16) + 1
		var out bytes.Buffer
		tap := &headerTap{w: &out}
		for p := in; len(p) > 0; {
			n := min(size, len(p))
			tap.Write(p[:n])
			p = p[n:]
		}
		if id := tap.messageID(); strings.Contains(id, "\n") || len(id) > maxHeaderTap {
			t.Errorf("Message-ID %q", id)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Errorf("passed on %q, want %q", out.Bytes(), in)
		}
	})
}
