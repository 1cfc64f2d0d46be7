package pop3

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// writeMaildir creates a Maildir holding files (sub/name → content).
func writeMaildir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMaildropOpen(t *testing.T) {
	dir := writeMaildir(t, map[string]string{
		"new/1700000002.M1P1.host":         "B: 2\n\nbody\n",    // 11 bytes, 3 LF: 14
		"cur/1700000001.M1P1.host:2,S":     "A: 1\r\n\r\nx\r\n", // 11
		"cur/1700000003.M1P1.host,W=99:2,": "C: 3\n",            // W= wins: 99
		"new/.hidden":                      "not a message",
		"cur/999999999.M1P1.old:2,":        "Old: yes\n\n", // 9 digits: earlier
		"tmp/1700000009.M1P1.host":         "being delivered",
	})
	md, err := openMaildrop(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer md.close()
	var got []string
	for _, m := range md.msgs {
		got = append(got, m.uid+" "+strconv.FormatInt(m.size, 10))
	}
	want := []string{"999999999.M1P1.old 12", "1700000001.M1P1.host 11", "1700000002.M1P1.host 14", "1700000003.M1P1.host,W=99 99"}
	if !slices.Equal(got, want) {
		t.Errorf("messages %q; want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "cur", "1700000002.M1P1.host:2,")); err != nil {
		t.Errorf("new/ message not moved to cur/: %v", err)
	}
	// The sizes counted are cached for the next session.
	cache, _ := os.ReadFile(filepath.Join(dir, sizesFile))
	if !strings.Contains(string(cache), "1700000002.M1P1.host 14\n") {
		t.Errorf("size cache:\n%s", cache)
	}
	// A second session is refused while the first holds the lock.
	if _, err := openMaildrop(dir); !errors.Is(err, ErrInUse) {
		t.Errorf("second open: %v; want ErrInUse", err)
	}
}

func TestMaildropCommit(t *testing.T) {
	dir := writeMaildir(t, map[string]string{
		"cur/1.a:2,":  "a\n",
		"cur/2.b:2,T": "b\n",
		"cur/3.c:2,":  "c\n",
		"maildirsize": "1000S\n6 3\n",
	})
	md, err := openMaildrop(dir)
	if err != nil {
		t.Fatal(err)
	}
	md.msgs[0].delete = true
	md.msgs[1].seen = true
	if n, err := md.commit(); n != 1 || err != nil {
		t.Errorf("commit: %d %v", n, err)
	}
	md.close()
	names, _ := readNames(filepath.Join(dir, "cur"))
	slices.Sort(names)
	if want := []string{"2.b:2,ST", "3.c:2,"}; !slices.Equal(names, want) {
		t.Errorf("cur/ holds %q; want %q", names, want)
	}
	if q, _ := os.ReadFile(filepath.Join(dir, "maildirsize")); string(q) != "1000S\n6 3\n-2 -1\n" {
		t.Errorf("maildirsize:\n%s", q)
	}
	// The lock is free again.
	md, err = openMaildrop(dir)
	if err != nil {
		t.Fatal(err)
	}
	md.close()
}

func TestUIDOf(t *testing.T) {
	for _, base := range []string{"1700000000.M1P1.host,S=12", strings.Repeat("x", 70)} {
		if uidOf(base) != base {
			t.Errorf("uidOf(%q) = %q; want the name", base, uidOf(base))
		}
	}
	long := strings.Repeat("y", 71)
	if u := uidOf(long); u == long || len(u) > 70 || u != uidOf(long) || u == uidOf(long+"z") {
		t.Errorf("uidOf(71 characters) = %q", u)
	}
	if u := uidOf("a b"); strings.Contains(u, " ") {
		t.Errorf("uidOf with a space = %q", u)
	}
}

func TestWithFlag(t *testing.T) {
	for name, want := range map[string]string{"x:2,": "x:2,S", "x:2,T": "x:2,ST", "x:2,FT": "x:2,FST", "x:2,S": "x:2,S", "x": "x:2,S", "x:1,foo": "x:1,foo"} {
		if got := withFlag(name, 'S'); got != want {
			t.Errorf("withFlag(%q) = %q; want %q", name, got, want)
		}
	}
}
