package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	gomaildir "github.com/emersion/go-maildir"
)

func TestInitCreatesMissingDirectories(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	base := t.TempDir()
	d := Dir(filepath.Join(base, "vhosts", "example.org", "bob"))
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"vhosts", "vhosts/example.org", "vhosts/example.org/bob",
		"vhosts/example.org/bob/tmp", "vhosts/example.org/bob/new", "vhosts/example.org/bob/cur"} {
		st, err := os.Stat(filepath.Join(base, p))
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want a directory with 0700", p, st.Mode())
		}
	}
	// What exists is left alone.
	os.Chmod(string(d), 0o750)
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(string(d)); st.Mode().Perm() != 0o750 {
		t.Errorf("Init changed an existing Maildir's mode to %v", st.Mode().Perm())
	}
}

func TestInitOverAFileFails(t *testing.T) {
	base := t.TempDir()
	os.WriteFile(filepath.Join(base, "Maildir"), nil, 0o600)
	if err := Dir(filepath.Join(base, "Maildir")).Init(); err == nil {
		t.Fatal("Init over a file succeeded")
	}
}

// newMaildir returns an initialised Maildir in a temp dir.
func newMaildir(t *testing.T) Dir {
	t.Helper()
	d := Dir(filepath.Join(t.TempDir(), "Maildir"))
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	return d
}

func deliverString(d Dir, msg string) (string, error) {
	return d.Deliver(strings.NewReader(msg), int64(len(msg)))
}

// ls lists a directory of a Maildir.
func ls(t *testing.T, d Dir, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(d.path(sub))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

var nameRE = regexp.MustCompile(`^(\d+)\.M(\d{1,6})P(\d+)Q(\d+)R([0-9a-f]{16})\.([^/:,]+),S=(\d+)$`)

func TestDeliverWritesTheMessageIntoNew(t *testing.T) {
	d := newMaildir(t)
	old := syscall.Umask(0o077 | 0o200) // even a umask taking the owner's write bit
	defer syscall.Umask(old)
	msg := "Return-Path: <a@x>\nSubject: hi\n\nbody\n"
	name, err := deliverString(d, msg)
	if err != nil {
		t.Fatal(err)
	}
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		t.Fatalf("name %q is not SECONDS.MusecPpidQnRrand.HOST,S=SIZE", name)
	}
	if m[3] != strconv.Itoa(os.Getpid()) || m[7] != strconv.Itoa(len(msg)) {
		t.Errorf("name %q: want P%d and S=%d", name, os.Getpid(), len(msg))
	}
	got, err := os.ReadFile(d.path("new", name))
	if err != nil || string(got) != msg {
		t.Fatalf("new/%s = %q, %v; want %q", name, got, err, msg)
	}
	st, _ := os.Stat(d.path("new", name))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if left := ls(t, d, "tmp"); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
	if _, err := os.Stat(d.path("maildirsize")); err == nil {
		t.Error("a maildirsize appeared in a Maildir without quota")
	}
}

// The readers of later issues use go-maildir: it must see what we deliver.
func TestGoMaildirReadsDeliveries(t *testing.T) {
	d := newMaildir(t)
	name, err := deliverString(d, "Subject: read me\n\nhello\n")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := gomaildir.Dir(d).Unseen()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Unseen: %d messages, %v", len(msgs), err)
	}
	if msgs[0].Key() != name {
		t.Errorf("key %q, want %q", msgs[0].Key(), name)
	}
	r, err := msgs[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	if string(b) != "Subject: read me\n\nhello\n" {
		t.Errorf("go-maildir read %q", b)
	}
}

func TestDeliverNamesAreUnique(t *testing.T) {
	d := newMaildir(t)
	const workers, each = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := deliverString(d, fmt.Sprintf("Subject: %d-%d\n\n", w, i)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(ls(t, d, "new")); n != workers*each {
		t.Errorf("new/ holds %d files, want %d", n, workers*each)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDeliverFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		size int64
		want string
	}{
		{"read error", &failingReader{[]byte("Subject: x\n\npart"), errors.New("pipe broke")}, 100, "pipe broke"},
		{"short message", strings.NewReader("Subject: x\n\n"), 100, "announced"},
		{"long message", strings.NewReader("Subject: x\n\nmore than announced\n"), 5, "announced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newMaildir(t)
			_, err := d.Deliver(tt.r, tt.size)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if left := append(ls(t, d, "new"), ls(t, d, "tmp")...); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestDeliverIntoMissingMaildirFails(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), "Maildir"))
	if _, err := deliverString(d, "Subject: x\n\n"); err == nil {
		t.Fatal("delivered into a Maildir that Init never made")
	}
}

func TestNewNameEscapesTheHost(t *testing.T) {
	name := newName(42)
	host := strings.TrimSuffix(strings.SplitN(name, ".", 3)[2], ",S=42")
	if strings.ContainsAny(host, "/:,") {
		t.Errorf("host part %q holds / : or ,", host)
	}
	if !bytes.HasSuffix([]byte(name), []byte(",S=42")) {
		t.Errorf("name %q does not end in ,S=42", name)
	}
}
