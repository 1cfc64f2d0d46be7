package maillog

import (
	"bytes"
	"testing"
)

func TestDeliveredLine(t *testing.T) {
	var buf bytes.Buffer
	SetOutput(&buf)
	defer SetOutput(nil)
	Delivered("0ABC", "a@x", "bob@y", "", "/home/bob/Maildir", 4312)
	Delivered("", "", "carol@y", "info@y", "/var/mail/y/my mail", 10)
	want := "id=0ABC event=delivered from=<a@x> to=<bob@y> mailbox=/home/bob/Maildir size=4312\n" +
		`event=delivered from=<> to=<carol@y> orig_to=<info@y> mailbox="/var/mail/y/my mail" size=10` + "\n"
	if buf.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", buf.String(), want)
	}
}
