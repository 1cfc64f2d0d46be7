package pop3

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteMessage(t *testing.T) {
	tests := []struct {
		name, file string
		lines      int // TOP's line count; -1 for RETR
		want       string
	}{
		{name: "lf", file: "Subject: a\n\nbody\n", lines: -1, want: "Subject: a\r\n\r\nbody\r\n.\r\n"},
		{name: "crlf unchanged", file: "Subject: a\r\n\r\nbody\r\n", lines: -1, want: "Subject: a\r\n\r\nbody\r\n.\r\n"},
		{name: "dots stuffed", file: "S: a\n\n.\n..x\n.\r\nend\n", lines: -1, want: "S: a\r\n\r\n..\r\n...x\r\n..\r\nend\r\n.\r\n"},
		{name: "no final newline", file: "S: a\n\nbody", lines: -1, want: "S: a\r\n\r\nbody\r\n.\r\n"},
		{name: "final lone cr", file: "S: a\n\nbody\r", lines: -1, want: "S: a\r\n\r\nbody\r\n.\r\n"},
		{name: "inner cr kept", file: "S: a\n\nx\ry\n", lines: -1, want: "S: a\r\n\r\nx\ry\r\n.\r\n"},
		{name: "empty file", file: "", lines: -1, want: ".\r\n"},
		{name: "top 0", file: "A: 1\nB: 2\n\nl1\nl2\n", lines: 0, want: "A: 1\r\nB: 2\r\n\r\n.\r\n"},
		{name: "top 1", file: "A: 1\r\n\r\nl1\r\n.l2\r\n", lines: 1, want: "A: 1\r\n\r\nl1\r\n.\r\n"},
		{name: "top more than there is", file: "A: 1\n\n.l1\n", lines: 10, want: "A: 1\r\n\r\n..l1\r\n.\r\n"},
		{name: "top without body", file: "A: 1\n", lines: 3, want: "A: 1\r\n.\r\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if _, err := writeMessage(w, strings.NewReader(tt.file), tt.lines); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if b.String() != tt.want {
			t.Errorf("%s: sent %q; want %q", tt.name, b.String(), tt.want)
		}
	}
}

// The size LIST gives is what RETR sends without stuffing and terminator,
// for any file, with lines broken across the reading buffer anywhere.
func TestWireSizeMatchesRetr(t *testing.T) {
	defer func(n int) { wireBuffer = n }(wireBuffer)
	wireBuffer = 16
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab.\r\n\n\n ")
	for i := range 2000 {
		n := rng.IntN(80)
		file := make([]byte, n)
		for j := range file {
			file[j] = alphabet[rng.IntN(len(alphabet))]
		}
		path := filepath.Join(dir, "m")
		os.WriteFile(path, file, 0o600)
		size, err := wireSizeOfFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		sent, err := writeMessage(w, bytes.NewReader(file), -1)
		w.Flush()
		if err != nil {
			t.Fatal(err)
		}
		if sent != size {
			t.Fatalf("case %d %q: LIST size %d, RETR sent %d", i, file, size, sent)
		}
		// The wire form: CRLF lines only, and unstuffed it has size octets.
		wire := strings.TrimSuffix(b.String(), ".\r\n")
		var unstuffed int
		for _, line := range strings.SplitAfter(wire, "\r\n") {
			if line == "" {
				continue
			}
			if !strings.HasSuffix(line, "\r\n") || strings.Contains(strings.TrimSuffix(line, "\r\n"), "\n") {
				t.Fatalf("case %d %q: bad line %q in %q", i, file, line, wire)
			}
			if strings.HasPrefix(line, ".") {
				if !strings.HasPrefix(line, "..") {
					t.Fatalf("case %d %q: unstuffed dot line %q", i, file, line)
				}
				line = line[1:]
			}
			unstuffed += len(line)
		}
		if int64(unstuffed) != size {
			t.Fatalf("case %d %q: %d octets unstuffed, LIST says %d", i, file, unstuffed, size)
		}
	}
}
