package imapstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// crlf ends every line with CRLF and leaves CRLF and lone CRs alone.
func TestCRLF(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"no line end", "a", "a"},
		{"LF", "a\nb\n", "a\r\nb\r\n"},
		{"CRLF kept", "a\r\nb\r\n", "a\r\nb\r\n"},
		{"mixed", "a\r\nb\nc", "a\r\nb\r\nc"},
		{"leading LF", "\nx", "\r\nx"},
		{"blank lines", "\n\n\r\n\n", "\r\n\r\n\r\n\r\n"},
		{"lone CR", "a\rb\r", "a\rb\r"},
	} {
		if got := string(crlf([]byte(tc.in))); got != tc.want {
			t.Errorf("%s: crlf(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// readWhole reads files of any size whole, and says which file is missing.
func TestReadWhole(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 4095, 4096, 4097, 1 << 20} {
		path := filepath.Join(dir, "f")
		want := strings.Repeat("x", n)
		os.WriteFile(path, []byte(want), 0o600)
		if got, err := readWhole(path); err != nil || string(got) != want {
			t.Errorf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := readWhole(filepath.Join(dir, "gone")); !os.IsNotExist(err) || !strings.Contains(err.Error(), "gone") {
		t.Errorf("missing file: %v", err)
	}
}
