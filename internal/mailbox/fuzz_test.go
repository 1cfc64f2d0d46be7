package mailbox

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadMessage: any input is either refused as malformed or read back
// byte for byte after what was dropped from its start.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		"Subject: x\n\nbody\n",
		"From a@b Thu Nov 26 10:00:00 2026\nReturn-Path: <a@b>\nDelivered-To: c@d\nSubject: x\n\n",
		"Delivered-To:\n <bob@x>\r\nX: y\r\n\r\n",
		"not a header\n",
		" continued\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessage(bytes.NewReader(in), 0)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q: %v is not ErrMalformed", in, err)
			}
			return
		}
		defer m.Close()
		body, _ := io.ReadAll(m.body())
		if int64(len(body)) != m.Size() || !bytes.HasSuffix(in, body) || len(body) == 0 {
			t.Fatalf("%q: body %q (size %d)", in, body, m.Size())
		}
		for _, a := range m.delivered {
			if !m.loops(a) {
				t.Fatalf("%q: Delivered-To %q is not a loop", in, a)
			}
		}
	})
}
