package pipe

import (
	"strings"
	"syscall"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzClassify feeds arbitrary command output and exit statuses to the
// classifier: the error's text must stay one printable line that a log or a
// bounce can carry, and its code a 4.x.x or 5.x.x.
func FuzzClassify(f *testing.F) {
	f.Add([]byte("4.2.1 mailbox busy\nmore\n"), uint8(1))
	f.Add([]byte("5.1.1\n"), uint8(75))
	f.Add([]byte("\n\n   \t\r\nprocmail: Couldn't create \"/var/mail/x\"\n"), uint8(73))
	f.Add([]byte("4.999.999x not a code"), uint8(1))
	f.Add([]byte(strings.Repeat("é", 300)), uint8(2))
	f.Fuzz(func(t *testing.T, out []byte, status uint8) {
		e := classify("cmd", syscall.WaitStatus(uint32(status)<<8), out)
		if status == 0 {
			if e != nil {
				t.Fatalf("exit 0 gave %v", e)
			}
			return
		}
		if e == nil {
			t.Fatalf("exit %d gave nil", status)
		}
		if len(e.Code) < 5 || (e.Code[0] != '4' && e.Code[0] != '5') || e.Code[1] != '.' {
			t.Fatalf("code %q", e.Code)
		}
		if e.Temporary() != (e.Code[0] == '4') {
			t.Fatalf("code %s but Temporary() = %v", e.Code, e.Temporary())
		}
		msg := e.Error()
		for _, r := range msg {
			if !unicode.IsPrint(r) {
				t.Fatalf("unprintable %q in %q", r, msg)
			}
		}
		if len(e.firstLine) > maxLine+len("...") {
			t.Fatalf("first line %d bytes", len(e.firstLine))
		}
		if utf8.Valid(out) && utf8.RuneCountInString(e.Output) != utf8.RuneCount(out) {
			t.Fatalf("output changed length: %q from %q", e.Output, out)
		}
	})
}
