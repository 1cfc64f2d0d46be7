package maillog

import (
	"bytes"
	"testing"
)

func TestQueuedLine(t *testing.T) {
	var buf bytes.Buffer
	SetOutput(&buf)
	defer SetOutput(nil)
	Queued("0ABC", "a@x", 2, 4312, "127.0.0.1", "")
	Queued("0ABD", "", 1, 10, "", `Bob "the" Builder`)
	want := "id=0ABC event=queued from=<a@x> nrcpt=2 size=4312 client=127.0.0.1\n" +
		`id=0ABD event=queued from=<> nrcpt=1 size=10 user="Bob \"the\" Builder"` + "\n"
	if buf.String() != want {
		t.Errorf("log =\n%s\nwant\n%s", buf.String(), want)
	}
}
