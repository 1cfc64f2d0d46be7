package smtpserver

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestWireLook(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		greeting       int32
	}{
		{"other replies pass", "250 2.0.0 Roger, accepting mail from <a@b>\r\n", "250 2.0.0 Roger, accepting mail from <a@b>\r\n", greetNone},
		{"502 for RCPT", "502 5.5.1 Missing MAIL FROM command.\r\n", "503 5.5.1 Error: need MAIL command\r\n", greetNone},
		{"two lines, second fixed", "250 2.0.0 Ok\r\n502 5.5.1 Missing RCPT TO command.\r\nrest", "250 2.0.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\nrest", greetNone},
		{"partial line passes", "502 5.5.1 Missing MAIL FROM command.", "502 5.5.1 Missing MAIL FROM command.", greetNone},
		{"EHLO", "250-Hello c.test\r\n", "250-Hello c.test\r\n", greetEHLO},
		{"HELO", "250 2.0.0 Hello c.test\r\n", "250 2.0.0 Hello c.test\r\n", greetHELO},
	} {
		c := newWireConn(nil, 0)
		if got := string(c.look([]byte(tc.in))); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		if got := c.greeting.Load(); got != tc.greeting {
			t.Errorf("%s: greeting %d, want %d", tc.name, got, tc.greeting)
		}
	}
}

// After STARTTLS the bytes are ciphertext and are left alone.
func TestWireStopsAtTLS(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newWireConn(a, 0)
	go func() {
		c.Write([]byte("220 2.0.0 Ready to start TLS\r\n"))
		c.Write([]byte("502 5.5.1 Missing MAIL FROM command.\r\n"))
	}()
	buf := make([]byte, 200)
	var got []byte
	for len(got) < len("220 2.0.0 Ready to start TLS\r\n502 5.5.1 Missing MAIL FROM command.\r\n") {
		n, err := b.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !strings.HasSuffix(string(got), "502 5.5.1 Missing MAIL FROM command.\r\n") {
		t.Errorf("after STARTTLS: %q", got)
	}
}

// wireConn changes only whole lines that are in fixedReplies.
func FuzzWireLook(f *testing.F) {
	f.Add([]byte("502 5.5.1 Missing MAIL FROM command.\r\n250 ok\r\n"))
	f.Add([]byte("250-Hello x\r\n250 2.0.0 Hello y\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got := newWireConn(nil, 0).look(in)
		want := in
		for from, to := range fixedReplies {
			want = replaceLines(want, from, to)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("look(%q) = %q, want %q", in, got, want)
		}
	})
}

// replaceLines replaces the whole CRLF-ended lines equal to from.
func replaceLines(p []byte, from, to string) []byte {
	var out []byte
	for {
		i := bytes.Index(p, crlf)
		if i < 0 {
			return append(out, p...)
		}
		if string(p[:i]) == from {
			out = append(out, to...)
		} else {
			out = append(out, p[:i]...)
		}
		out = append(out, crlf...)
		p = p[i+2:]
	}
}
