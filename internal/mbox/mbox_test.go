package mbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The helper process appends for the tests that need another process: a
// small RLIMIT_FSIZE, or concurrent appends from several processes.
func TestMain(m *testing.M) {
	if os.Getenv("YUBIN_MBOX_HELPER") != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

func helperMain() int {
	if path := os.Getenv("HELPER_HOLD_LOCK"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			fmt.Println(err)
			return 2
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
			fmt.Println(err)
			return 2
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	if n := atoi("HELPER_FSIZE"); n > 0 {
		lim := unix.Rlimit{Cur: uint64(n), Max: unix.RLIM_INFINITY}
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
			fmt.Println("setrlimit:", err)
			return 2
		}
	}
	mb := Mailbox{Path: os.Getenv("HELPER_PATH"), Uid: atoi("HELPER_UID"), Gid: atoi("HELPER_GID"),
		Envelope: Envelope{Sender: "helper@example.org"}}
	for i := 0; i < atoi("HELPER_COUNT"); i++ {
		msg := testMessage(os.Getenv("HELPER_ID"), i, atoi("HELPER_SIZE"))
		if err := Append(context.Background(), mb, strings.NewReader(msg)); err != nil {
			var e *Error
			if errors.As(err, &e) {
				fmt.Println(e.Code, e.Temporary(), err)
			} else {
				fmt.Println("untyped", err)
			}
			return 1
		}
	}
	return 0
}

// testMessage is message i of writer id, about size bytes, no "From " lines.
func testMessage(id string, i, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Subject: %s %d\n\n", id, i)
	line := fmt.Sprintf("%s %d: the quick brown fox jumps over the lazy dog\n", id, i)
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.String()
}

func runHelper(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"YUBIN_MBOX_HELPER=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const testUser = "yubin-test"

// userDir returns a fresh directory and the uid and gid that Append runs as
// in these tests: ourselves, or when we are root, an unprivileged system
// user (created if needed) who owns the directory.
func userDir(t *testing.T) (dir string, uid, gid int) {
	t.Helper()
	dir = t.TempDir()
	if os.Geteuid() != 0 {
		return dir, os.Getuid(), os.Getgid()
	}
	uid, gid = ensureUser(t)
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir, uid, gid
}

func ensureUser(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(testUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", testUser).CombinedOutput()
		if u, _ = user.Lookup(testUser); u == nil { // another package's test may have won the race
			t.Skipf("useradd %s: %v %s", testUser, err, out)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstMessage appends a short message to mb and returns the file's content.
func firstMessage(t *testing.T, mb Mailbox) string {
	t.Helper()
	if err := Append(context.Background(), mb, strings.NewReader("Subject: first\n\nok\n")); err != nil {
		t.Fatal(err)
	}
	return readFile(t, mb.Path)
}

// unchanged checks that the file at path still holds before.
func unchanged(t *testing.T, path, before string) {
	t.Helper()
	if got := readFile(t, path); got != before {
		t.Errorf("file changed (not truncated back?): %d bytes %.60q..., want %d bytes", len(got), got, len(before))
	}
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want *mbox.Error", err, err)
	}
	return e
}

func TestAppendTwoMessages(t *testing.T) {
	dir, uid, gid := userDir(t)
	path := filepath.Join(dir, "mbox")
	first := Mailbox{Path: path, Uid: uid, Gid: gid, Envelope: Envelope{
		Sender: "alice@example.org", Recipient: "bob@example.org", OriginalRecipient: "postmaster@example.org",
		Time: time.Date(2024, 11, 28, 4, 16, 31, 0, time.UTC),
	}}
	msg1 := "Subject: one\n\nFrom the start\n>From quoted already\nFrom\nFrom: not a separator\n From indented\nlast line without newline"
	if err := Append(context.Background(), first, strings.NewReader(msg1)); err != nil {
		t.Fatal(err)
	}
	second := Mailbox{Path: path, Uid: uid, Gid: gid, Envelope: Envelope{
		Recipient: "bob@example.org", Time: time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC),
	}}
	if err := Append(context.Background(), second, strings.NewReader("Subject: two\n\nbody\n")); err != nil {
		t.Fatal(err)
	}
	want := "From alice@example.org Thu Nov 28 04:16:31 2024\n" +
		"Return-Path: <alice@example.org>\n" +
		"X-Original-To: postmaster@example.org\n" +
		"Delivered-To: bob@example.org\n" +
		"Subject: one\n\n>From the start\n>From quoted already\nFrom\nFrom: not a separator\n From indented\nlast line without newline\n" +
		"\n" +
		"From MAILER-DAEMON Sun Dec  1 00:00:00 2024\n" +
		"Return-Path: <>\n" +
		"Delivered-To: bob@example.org\n" +
		"Subject: two\n\nbody\n" +
		"\n"
	if got := readFile(t, path); got != want {
		t.Errorf("mbox:\n%q\nwant\n%q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("new file owned by %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if _, err := os.Lstat(path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("dot-lock left behind: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	dir, uid, gid := userDir(t)
	const content = "existing\n"
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chown(p, uid, gid)
		return p
	}
	target := mk("target", 0o600)
	symlink := filepath.Join(dir, "symlink")
	if err := os.Symlink(target, symlink); err != nil {
		t.Fatal(err)
	}
	linked := mk("linked", 0o600)
	if err := os.Link(linked, filepath.Join(dir, "second-link")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(fifo, uid, gid)
	subdir := filepath.Join(dir, "subdir")
	os.Mkdir(subdir, 0o700)
	os.Chown(subdir, uid, gid)
	executable := mk("script", 0o700)

	tests := []struct {
		name, path, code string
		temporary        bool
	}{
		{"symlink", symlink, "5.2.0", false},
		{"hard link", linked, "5.2.0", false},
		{"fifo", fifo, "5.2.0", false},
		{"directory", subdir, "5.2.0", false},
		{"device", "/dev/zero", "5.2.0", false},
		{"executable", executable, "5.7.1", false},
		{"missing directory", filepath.Join(dir, "no", "such"), "5.2.0", false},
		{"relative path", "mbox", "4.3.5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb := Mailbox{Path: tt.path, Uid: uid, Gid: gid, LockTimeout: time.Second}
			err := Append(context.Background(), mb, strings.NewReader("Subject: x\n\nx\n"))
			e := asError(t, err)
			if e.Code != tt.code || e.Temporary() != tt.temporary {
				t.Errorf("%s: got %s temporary=%v (%v), want %s temporary=%v", tt.name, e.Code, e.Temporary(), err, tt.code, tt.temporary)
			}
		})
	}
	for _, p := range []string{target, linked, executable} {
		if got := readFile(t, p); got != content {
			t.Errorf("%s changed: %q", p, got)
		}
	}
}

func TestDevNull(t *testing.T) {
	_, uid, gid := userDir(t)
	mb := Mailbox{Path: "/dev/null", Uid: uid, Gid: gid}
	if err := Append(context.Background(), mb, strings.NewReader("Subject: x\n\nx\n")); err != nil {
		t.Fatal(err)
	}
}

// failingReader gives some of a message, then fails.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n >= 100000 {
		return 0, errors.New("queue file unreadable")
	}
	n := min(len(p), 1000)
	for i := range p[:n] {
		p[i] = 'x'
		if i%50 == 49 {
			p[i] = '\n'
		}
	}
	r.n += n
	return n, nil
}

func TestReadErrorTruncates(t *testing.T) {
	dir, uid, gid := userDir(t)
	path := filepath.Join(dir, "mbox")
	mb := Mailbox{Path: path, Uid: uid, Gid: gid}
	before := firstMessage(t, mb)
	e := asError(t, Append(context.Background(), mb, &failingReader{}))
	if !e.Temporary() || e.Code != "4.3.0" {
		t.Errorf("got %s temporary=%v (%v), want 4.3.0 temporary", e.Code, e.Temporary(), e)
	}
	unchanged(t, path, before)
}

// A write that fails half way (RLIMIT_FSIZE in a helper process: the
// kernel's EFBIG) leaves the file as it was.
func TestFileSizeLimitTruncates(t *testing.T) {
	dir, uid, gid := userDir(t)
	path := filepath.Join(dir, "mbox")
	mb := Mailbox{Path: path, Uid: uid, Gid: gid}
	before := firstMessage(t, mb)
	out, err := runHelper(t, "HELPER_PATH="+path, "HELPER_COUNT=1", "HELPER_SIZE=100000", "HELPER_ID=big",
		"HELPER_FSIZE="+strconv.Itoa(len(before)+5000), "HELPER_UID="+strconv.Itoa(uid), "HELPER_GID="+strconv.Itoa(gid))
	if err == nil {
		t.Fatalf("helper succeeded past the file size limit: %s", out)
	}
	// Postfix's mbox_dsn: EFBIG is 5.2.2 (mailbox full), permanent.
	if !strings.HasPrefix(out, "5.2.2 false ") || !strings.Contains(out, "file too large") {
		t.Errorf("helper: %v %s", err, out)
	}
	unchanged(t, path, before)
}

// A full file system (a tiny tmpfs) gives a temporary error and leaves the
// file as it was.
func TestFullDiskTruncates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	_, uid, gid := userDir(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	os.Chmod(filepath.Dir(mnt), 0o755)
	if err := os.Chown(mnt, uid, gid); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, "mbox")
	mb := Mailbox{Path: path, Uid: uid, Gid: gid}
	before := firstMessage(t, mb)
	e := asError(t, Append(context.Background(), mb, strings.NewReader(testMessage("big", 0, 200000))))
	if e.Code != "4.3.0" || !e.Temporary() || !errors.Is(e, unix.ENOSPC) {
		t.Errorf("got %s temporary=%v (%v), want 4.3.0 ENOSPC", e.Code, e.Temporary(), e)
	}
	unchanged(t, path, before)
}

func TestLockedMailboxIsTemporary(t *testing.T) {
	dir, uid, gid := userDir(t)
	path := filepath.Join(dir, "mbox")
	mb := Mailbox{Path: path, Uid: uid, Gid: gid, LockTimeout: 300 * time.Millisecond}
	before := firstMessage(t, mb)

	t.Run("fcntl", func(t *testing.T) {
		// A classic POSIX lock, as other programs take it, conflicts with
		// our OFD lock. It must be another process's: a helper holds it
		// until we close its stdin.
		holder := exec.Command(os.Args[0], "-test.run=^$")
		holder.Env = append(os.Environ(), "YUBIN_MBOX_HELPER=1", "HELPER_HOLD_LOCK="+path)
		stdin, _ := holder.StdinPipe()
		stdout, _ := holder.StdoutPipe()
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { stdin.Close(); holder.Wait() }()
		buf := make([]byte, 7)
		if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "locked\n" {
			t.Fatalf("lock holder: %q %v", buf, err)
		}
		e := asError(t, Append(context.Background(), mb, strings.NewReader("Subject: second\n\nx\n")))
		if e.Code != "4.2.0" || !e.Temporary() {
			t.Errorf("got %s temporary=%v (%v), want 4.2.0 temporary", e.Code, e.Temporary(), e)
		}
	})
	t.Run("dotlock", func(t *testing.T) {
		lockPath := path + ".lock"
		if err := os.WriteFile(lockPath, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(lockPath)
		e := asError(t, Append(context.Background(), mb, strings.NewReader("Subject: second\n\nx\n")))
		if e.Code != "4.2.0" || !e.Temporary() {
			t.Errorf("got %s temporary=%v (%v), want 4.2.0 temporary", e.Code, e.Temporary(), e)
		}
		if _, err := os.Stat(lockPath); err != nil {
			t.Errorf("someone else's dot-lock removed: %v", err)
		}
	})
	unchanged(t, path, before)
}

// Goroutines of this process and other processes append at once; every
// message lands whole.
func TestConcurrentAppends(t *testing.T) {
	dir, uid, gid := userDir(t)
	path := filepath.Join(dir, "mbox")
	const (
		goroutines = 6
		processes  = 3
		each       = 5
		size       = 200000 // several write(2)s each (64 KB buffer), so that interleaving would show
	)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each+processes)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mb := Mailbox{Path: path, Uid: uid, Gid: gid, Envelope: Envelope{Sender: "goroutine@example.org"}}
			for i := 0; i < each; i++ {
				if err := Append(context.Background(), mb, strings.NewReader(testMessage("g"+strconv.Itoa(g), i, size))); err != nil {
					errs <- err
				}
			}
		}()
	}
	for p := 0; p < processes; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := runHelper(t, "HELPER_PATH="+path, "HELPER_COUNT="+strconv.Itoa(each), "HELPER_SIZE="+strconv.Itoa(size),
				"HELPER_ID=p"+strconv.Itoa(p), "HELPER_UID="+strconv.Itoa(uid), "HELPER_GID="+strconv.Itoa(gid))
			if err != nil {
				errs <- fmt.Errorf("process %d: %v %s", p, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	content := readFile(t, path)
	if !strings.HasPrefix(content, "From ") {
		t.Fatalf("mbox does not start with a From_ line: %.40q", content)
	}
	seen := map[string]bool{}
	// Each message is "From ...\nReturn-Path: <...>\n" + body + "\n", and
	// bodies hold no "From " line.
	for n, m := range strings.Split(strings.TrimSuffix(content, "\n\n"), "\n\nFrom ") {
		if n == 0 {
			m = strings.TrimPrefix(m, "From ")
		}
		_, m, _ = strings.Cut(m, "\n")      // the From_ line
		_, body, ok := strings.Cut(m, "\n") // Return-Path
		body += "\n"
		var id string
		var i int
		if _, err := fmt.Sscanf(body, "Subject: %s %d\n", &id, &i); !ok || err != nil {
			t.Fatalf("bad message %.80q: %v", m, err)
		}
		if want := testMessage(id, i, size); body != want {
			t.Errorf("message %s %d damaged (%d bytes, want %d)", id, i, len(body), len(want))
		}
		key := id + " " + strconv.Itoa(i)
		if seen[key] {
			t.Errorf("message %s twice", key)
		}
		seen[key] = true
	}
	if len(seen) != (goroutines+processes)*each {
		t.Errorf("%d messages, want %d", len(seen), (goroutines+processes)*each)
	}
}

// As root, the file is reached with the user's permissions only, and the
// rest of the process keeps root's.
func TestUserPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_, uid, gid := userDir(t)
	rootOnly := t.TempDir() // 0700 root
	os.Chmod(filepath.Dir(rootOnly), 0o755)
	mb := Mailbox{Path: filepath.Join(rootOnly, "mbox"), Uid: uid, Gid: gid}
	e := asError(t, Append(context.Background(), mb, strings.NewReader("Subject: x\n\nx\n")))
	if e.Code != "5.2.0" || !errors.Is(e, unix.EACCES) {
		t.Errorf("got %s (%v), want 5.2.0 EACCES", e.Code, e)
	}
	if _, err := os.Stat(mb.Path); !os.IsNotExist(err) {
		t.Errorf("file created where the user may not write: %v", err)
	}

	e = asError(t, Append(context.Background(), Mailbox{Path: mb.Path}, strings.NewReader("x\n")))
	if e.Code != "4.3.5" {
		t.Errorf("uid 0 as root: got %s (%v), want 4.3.5", e.Code, e)
	}

	// No thread with the user's identity is left for other goroutines:
	// root still creates files in its 0700 directory from many goroutines.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			Append(context.Background(), mb, strings.NewReader("x\n"))
		}()
		go func() {
			defer wg.Done()
			p := filepath.Join(rootOnly, "root-"+strconv.Itoa(i))
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Errorf("root lost its permissions: %v", err)
			}
		}()
	}
	wg.Wait()
}
