package smtpserver

import (
	"bytes"
	"errors"
	"testing"
)

func TestLFWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"empty", nil, ""},
		{"lines", []string{"a\r\nb\r\n"}, "a\nb\n"},
		{"bare LF stays", []string{"a\nb\r\n"}, "a\nb\n"},
		{"lone CR stays", []string{"a\rb\r\n"}, "a\rb\n"},
		{"CR LF across writes", []string{"a\r", "\nb"}, "a\nb"},
		{"CR then CR", []string{"a\r", "\r\n"}, "a\r\n"},
		{"CR CR LF", []string{"\r\r\n"}, "\r\n"},
		{"CR at the very end", []string{"a\r"}, "a\r"},
		{"empty write keeps CR", []string{"a\r", "", "\n"}, "a\n"},
		{"only CRLFs", []string{"\r\n\r\n", "\r", "\n"}, "\n\n\n"},
	} {
		var out bytes.Buffer
		l := &lfWriter{w: &out}
		for _, c := range tc.chunks {
			if n, err := l.Write([]byte(c)); n != len(c) || err != nil {
				t.Fatalf("%s: Write(%q) = %d, %v", tc.name, c, n, err)
			}
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("%s: wrote %q, want %q", tc.name, out.String(), tc.want)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLFWriterError(t *testing.T) {
	l := &lfWriter{w: failWriter{}}
	_, err := l.Write([]byte("x\r\n"))
	var werr *writeError
	if !errors.As(err, &werr) {
		t.Errorf("Write to a failing writer: %v, want a *writeError", err)
	}
}

// However the stream is cut into writes, the result is the stream with
// every CRLF turned into LF.
func FuzzLFWriter(f *testing.F) {
	f.Add([]byte("a\r\nb\r\n"), uint8(1))
	f.Add([]byte("\r\r\n\n\r"), uint8(2))
	f.Add([]byte("x\ry\r\n.\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		size := int(step%16) + 1
		var out bytes.Buffer
		l := &lfWriter{w: &out}
		for p := in; len(p) > 0; {
			n := min(size, len(p))
			if m, err := l.Write(p[:n]); m != n || err != nil {
				t.Fatalf("Write = %d, %v", m, err)
			}
			p = p[n:]
		}
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		want := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%q in writes of %d: got %q, want %q", in, size, out.Bytes(), want)
		}
	})
}
