package test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// deliverSystem is a system whose mail_dir is under its temp dir, and the
// user running the test, to whom it can deliver without root.
func deliverSystem(t *testing.T, extra ...string) (s *system, me string) {
	t.Helper()
	s = newSystem(t)
	s.conf2(append([]string{"mail_dir = " + filepath.Join(s.dir, "mail", "%d", "%u")}, extra...)...)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return s, u.Username
}

// conf2 appends lines to the system's yubin.conf: a key set again takes the
// later value.
func (s *system) conf2(lines ...string) {
	s.t.Helper()
	f, err := os.OpenFile(s.conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		s.t.Fatal(err)
	}
}

// maildir is the default test Maildir of user@domain in s.
func (s *system) maildir(user, domain string) string {
	return filepath.Join(s.dir, "mail", domain, user)
}

// mailFiles lists a Maildir subdirectory ("new", "tmp"); a missing one is empty.
func mailFiles(t *testing.T, dir, sub string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, sub))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, filepath.Join(dir, sub, e.Name()))
	}
	return names
}

// onlyMessage returns the contents of the one file in dir's new/.
func onlyMessage(t *testing.T, dir string) string {
	t.Helper()
	files := mailFiles(t, dir, "new")
	if len(files) != 1 {
		t.Fatalf("%s/new holds %d files, want 1", dir, len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// 1,000 messages from 10 concurrent deliver processes into one Maildir:
// 1,000 files, each the message sent after the two lines deliver adds.
func TestDeliverConcurrentProcessesIntoOneMaildir(t *testing.T) {
	s, me := deliverSystem(t)
	const procs, each = 10, 100
	msgs := make([]string, procs*each)
	for i := range msgs {
		msgs[i] = testMessage(i, 2048+i%7*512)
	}
	var wg sync.WaitGroup
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p * each; i < (p+1)*each; i++ {
				if r := s.run(msgs[i], "deliver", "-f", "sender@example.org", me); r.code != 0 {
					t.Errorf("message %d: exit %d %s", i, r.code, r.stderr)
					return
				}
			}
		}()
	}
	wg.Wait()
	dir := s.maildir(me, s.hostname)
	files := mailFiles(t, dir, "new")
	if len(files) != len(msgs) {
		t.Fatalf("new/ holds %d files, want %d", len(files), len(msgs))
	}
	want := "Return-Path: <sender@example.org>\nDelivered-To: " + me + "@" + s.hostname + "\n"
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rest, ok := strings.CutPrefix(string(b), want)
		if !ok {
			t.Fatalf("%s does not start with the two lines deliver adds:\n%.200s", f, b)
		}
		tag := checkTestMessage(t, rest)
		n, _ := strconv.Atoi(tag)
		if seen[tag] || n < 0 || n >= len(msgs) || rest != msgs[n] {
			t.Errorf("%s: message %q is damaged or there twice", f, tag)
		}
		seen[tag] = true
	}
	if left := mailFiles(t, dir, "tmp"); len(left) != 0 {
		t.Errorf("tmp/ holds %d files", len(left))
	}
}

// A deliver killed at each step: before the link into new/ nothing is
// there; after it the message is whole. The Maildir works on afterwards.
func TestDeliverCrashAtEachStep(t *testing.T) {
	tests := []struct {
		step      string
		delivered bool
	}{
		{"maildir-created", false},
		{"maildir-written", false},
		{"maildir-synced", false},
		{"maildir-linked", true},
		{"maildir-delivered", true},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			s, me := deliverSystem(t)
			msg := testMessage(1, 256<<10)
			cmd := s.command("deliver", me)
			cmd.Env = append(cmd.Env, "YUBIN_TEST_CRASH_AT="+tt.step)
			cmd.Stdin = strings.NewReader(msg)
			if r := runCmd(t, cmd); r.code != -1 {
				t.Fatalf("deliver was not killed at %s: exit %d %s", tt.step, r.code, r.stderr)
			}
			dir := s.maildir(me, s.hostname)
			files := mailFiles(t, dir, "new")
			if got := len(files) == 1; got != tt.delivered || len(files) > 1 {
				t.Fatalf("killed at %s: %d files in new/, want delivered = %v", tt.step, len(files), tt.delivered)
			}
			if tt.delivered {
				_, rest, _ := strings.Cut(onlyMessage(t, dir), "Delivered-To: "+me+"@"+s.hostname+"\n")
				if rest != msg {
					t.Errorf("the message in new/ is damaged (%d bytes)", len(rest))
				}
			}
			if r := s.run("Subject: after\n\n", "deliver", me); r.code != 0 {
				t.Fatalf("delivery after the crash: exit %d %s", r.code, r.stderr)
			}
			if n := len(mailFiles(t, dir, "new")); n != len(files)+1 {
				t.Errorf("new/ holds %d files after one more delivery, want %d", n, len(files)+1)
			}
		})
	}
}

// A full disk is a temporary failure that leaves nothing behind.
func TestDeliverDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	s, me := deliverSystem(t)
	mnt := filepath.Join(s.dir, "full")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	s.conf2("mail_dir = " + filepath.Join(mnt, "%u"))
	dir := filepath.Join(mnt, me)

	r := s.run(testMessage(1, 512<<10), "deliver", me)
	if r.code != 75 || !strings.Contains(r.stderr, "no space left on device") {
		t.Fatalf("512 KB into 256 KB: exit %d %q; want 75 and no space left on device", r.code, r.stderr)
	}
	if left := append(mailFiles(t, dir, "new"), mailFiles(t, dir, "tmp")...); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if r := s.run("Subject: small\n\nfits\n", "deliver", me); r.code != 0 {
		t.Errorf("a small message after the full disk: exit %d %s", r.code, r.stderr)
	}
}

func TestDeliverOverQuota(t *testing.T) {
	s, me := deliverSystem(t)
	dir := s.maildir(me, s.hostname)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "maildirsize"), []byte("12000S,100C\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := testMessage(1, 8000)
	if r := s.run(msg, "deliver", me); r.code != 0 {
		t.Fatalf("first message: exit %d %s", r.code, r.stderr)
	}
	r := s.run(msg, "deliver", me)
	if r.code != 75 || !strings.HasPrefix(r.stderr, "deliver: "+me+": mailbox over quota: ") ||
		!strings.Contains(r.stderr, "of 12000") {
		t.Fatalf("second message: exit %d %q; want 75 and the quota", r.code, r.stderr)
	}
	if n := len(mailFiles(t, dir, "new")); n != 1 {
		t.Errorf("new/ holds %d files, want 1", n)
	}
	size, _ := os.ReadFile(filepath.Join(dir, "maildirsize"))
	if lines := strings.Split(strings.TrimSpace(string(size)), "\n"); len(lines) != 2 {
		t.Errorf("maildirsize = %q, want the definition and one delivery", size)
	}
}

func TestDeliverUnknownUser(t *testing.T) {
	for _, users := range []string{"system", "virtual"} {
		t.Run(users, func(t *testing.T) {
			s, _ := deliverSystem(t)
			if users == "virtual" {
				file := filepath.Join(s.dir, "users")
				os.WriteFile(file, []byte("alice:*\n"), 0o644)
				s.conf2("users_file = " + file)
			}
			r := s.run("Subject: x\n\n", "deliver", "nosuch-yubin-user")
			if r.code != 67 || r.stderr != "deliver: nosuch-yubin-user: no such user: \"nosuch-yubin-user\"\n" {
				t.Errorf("exit %d %q; want 67 and no such user", r.code, r.stderr)
			}
		})
	}
}

// A message that has been here before is refused as Postfix's local(8)
// refuses it: a permanent error (EX_DATAERR, bounced by the MTA).
func TestDeliverLoopRefused(t *testing.T) {
	s, me := deliverSystem(t)
	addr := me + "@" + s.hostname
	for _, hdr := range []string{addr, strings.ToUpper(addr), "<" + addr + ">"} {
		r := s.run("Received: from a\nDelivered-To: "+hdr+"\nSubject: x\n\n", "deliver", me)
		if r.code != 65 || r.stderr != "deliver: "+me+": mail forwarding loop for "+addr+"\n" {
			t.Errorf("Delivered-To: %s: exit %d %q; want 65 and the loop", hdr, r.code, r.stderr)
		}
	}
	if files := mailFiles(t, s.maildir(me, s.hostname), "new"); len(files) != 0 {
		t.Errorf("a looping message was delivered: %v", files)
	}
	// Another address's Delivered-To is the trace of a forward, not a loop.
	if r := s.run("Delivered-To: other@"+s.hostname+"\n\n", "deliver", me); r.code != 0 {
		t.Errorf("Delivered-To of another address: exit %d %s", r.code, r.stderr)
	}
}

func TestDeliverMalformedInput(t *testing.T) {
	tests := []struct {
		name, in string
		code     int
		stderr   string
	}{
		{"empty", "", 65, "empty message"},
		{"not a header", "Hello Bob,\n\nhow are you?\n", 65, `line 1 is not a header field: "Hello Bob,"`},
		{"text after the header", "Subject: x\nhow are you?\n\n", 65, "line 2 is not a header field"},
		{"NUL in the header", "Subject: \x00\n\n", 65, "NUL byte"},
		{"too big", "Subject: x\n\n" + strings.Repeat("x", 2000), 65, "more than 1024 bytes (message_size_limit)"},
		{"no body", "Subject: x\n", 0, ""},
		{"no header", "\nonly a body\n", 0, ""},
		{"no final newline", "Subject: x\n\nbody", 0, ""},
		{"8-bit body", "Subject: x\n\nrésumé \x00 \xff\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, me := deliverSystem(t, "message_size_limit = 1k")
			r := s.run(tt.in, "deliver", me)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Fatalf("exit %d %q; want %d and %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			files := mailFiles(t, s.maildir(me, s.hostname), "new")
			if (tt.code == 0) != (len(files) == 1) {
				t.Errorf("%d files delivered", len(files))
			}
		})
	}
}

// The header lines deliver adds, byte for byte; an MTA's own trace under a
// From_ line (Postfix's mailbox_command) is taken over, not doubled.
func TestDeliverHeaderLines(t *testing.T) {
	const body = "Subject: x\n\nhi\n"
	tests := []struct {
		name string
		args []string
		in   string
		want string // %s: me@hostname
	}{
		{"plain", nil, body, "Return-Path: <>\nDelivered-To: %s\n" + body},
		{"-f and -a", []string{"-f", "<alice@example.org>", "-a", "info@example.org"}, body,
			"Return-Path: <alice@example.org>\nX-Original-To: info@example.org\nDelivered-To: %s\n" + body},
		{"Postfix mailbox_command",
			nil,
			"From alice@example.org  Sat Nov 28 04:40:49 2026\nReturn-Path: <alice@example.org>\nX-Original-To: info@example.org\nDelivered-To: someone@example.org\n" + body,
			"Return-Path: <alice@example.org>\nX-Original-To: info@example.org\nDelivered-To: %s\n" + body},
		{"-f over the From_ line", []string{"-f", "bob@example.org"}, "From alice@example.org  Sat Nov 28 04:40:49 2026\n" + body,
			"Return-Path: <bob@example.org>\nDelivered-To: %s\n" + body},
		{"CRLF", []string{"-f", "a@b"}, "Subject: x\r\n\r\nhi\r\n", "Return-Path: <a@b>\r\nDelivered-To: %s\r\nSubject: x\r\n\r\nhi\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, me := deliverSystem(t)
			if r := s.run(tt.in, "deliver", append(tt.args, me)...); r.code != 0 {
				t.Fatalf("exit %d %s", r.code, r.stderr)
			}
			want := fmt.Sprintf(tt.want, me+"@"+s.hostname)
			if got := onlyMessage(t, s.maildir(me, s.hostname)); got != want {
				t.Errorf("stored\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// -s: one status line per user for callers that need every result; the
// exit status is the first failure's, and each failure is one stderr line.
func TestDeliverStatusLines(t *testing.T) {
	s, me := deliverSystem(t)
	in := "Delivered-To: " + me + "@other.example\nSubject: x\n\n"
	r := s.run(in, "deliver", "-s", me, "nosuch-yubin-user", strings.ToUpper(me)+"@Other.Example", me+"@third.example")
	want := fmt.Sprintf("%s\t0\tdelivered to %s\n", me, s.maildir(me, s.hostname)) +
		"nosuch-yubin-user\t67\tno such user: \"nosuch-yubin-user\"\n" +
		fmt.Sprintf("%s@Other.Example\t65\tmail forwarding loop for %s@other.example\n", strings.ToUpper(me), me) +
		fmt.Sprintf("%s@third.example\t0\tdelivered to %s\n", me, s.maildir(me, "third.example"))
	if r.code != 67 || r.stdout != want {
		t.Errorf("exit %d, stdout\n%s\nwant 67 and\n%s", r.code, r.stdout, want)
	}
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "deliver: nosuch-yubin-user: ") || !strings.HasPrefix(lines[1], "deliver: "+strings.ToUpper(me)+"@Other.Example: ") {
		t.Errorf("stderr %q, want one line per failure", r.stderr)
	}
	// Without -s, nothing on stdout.
	if r := s.run(in, "deliver", me); r.code != 0 || r.stdout != "" {
		t.Errorf("without -s: exit %d stdout %q", r.code, r.stdout)
	}
}

// Virtual users from users_file, with uid, gid and home, and without
// (mail_owner's, and no home: a mail_dir with ~ is a configuration error).
func TestDeliverVirtualUsers(t *testing.T) {
	s, me := deliverSystem(t)
	users := filepath.Join(s.dir, "users")
	alice := filepath.Join(s.dir, "vhome", "alice")
	lines := fmt.Sprintf("alice@example.org:*:%d:%d:%s\ncarol:*\n", os.Getuid(), os.Getgid(), alice)
	if err := os.WriteFile(users, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	s.conf2("users_file = "+users, "mail_owner = "+me, "mail_dir = ~/Maildir")

	r := s.run("Subject: x\n\n", "deliver", "-s", "Alice@Example.ORG", "carol@example.net")
	if r.code != 78 || !strings.Contains(r.stdout, "Alice@Example.ORG\t0\tdelivered to "+filepath.Join(alice, "Maildir")) ||
		!strings.Contains(r.stderr, `deliver: carol@example.net: user carol: configuration error: mail_dir "~/Maildir" needs a home directory`) {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := onlyMessage(t, filepath.Join(alice, "Maildir")); !strings.Contains(got, "Delivered-To: alice@example.org\n") {
		t.Errorf("alice's message:\n%s", got)
	}

	s.conf2("mail_dir = " + filepath.Join(s.dir, "vmail", "%d", "%u"))
	r = s.run("Subject: x\n\n", "deliver", "carol@example.net", "alice@example.org")
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	for user, domain := range map[string]string{"carol": "example.net", "alice": "example.org"} {
		dir := filepath.Join(s.dir, "vmail", domain, user)
		if got := onlyMessage(t, dir); !strings.Contains(got, "Delivered-To: "+user+"@"+domain+"\n") {
			t.Errorf("%s's message:\n%s", user, got)
		}
	}
}

// As root, deliver switches to the recipient: the Maildir and the file
// are the user's, and what the user may not write is not written. As that
// user, deliver delivers only to that user.
func TestDeliverAsRootToSystemUser(t *testing.T) {
	uid, gid, _ := ensureUser(t)
	s, _ := deliverSystem(t)
	for d := s.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // the user must reach its home and the binary
	}
	os.Chmod(s.conf, 0o644)
	homes := filepath.Join(s.dir, "home")
	home := filepath.Join(homes, testUser)
	os.MkdirAll(home, 0o755)
	os.Chown(home, uid, gid)
	os.Chmod(home, 0o700)
	s.conf2("mail_dir = " + filepath.Join(homes, "%u", "Maildir"))

	if r := s.run("Subject: x\n\n", "deliver", testUser); r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	dir := filepath.Join(home, "Maildir")
	files := mailFiles(t, dir, "new")
	if len(files) != 1 {
		t.Fatalf("new/ holds %d files", len(files))
	}
	for _, p := range []string{dir, dir + "/tmp", dir + "/new", dir + "/cur", files[0]} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		want := os.FileMode(0o700)
		if p == files[0] {
			want = 0o600
		}
		if int(sys.Uid) != uid || int(sys.Gid) != gid || st.Mode().Perm() != want {
			t.Errorf("%s: %d:%d %v; want %d:%d %v", p, sys.Uid, sys.Gid, st.Mode().Perm(), uid, gid, want)
		}
	}

	// A place only root may write: the user may not, so neither may deliver.
	closed := filepath.Join(s.dir, "closed")
	os.Mkdir(closed, 0o755)
	s.conf2("mail_dir = " + filepath.Join(closed, "%u"))
	r := s.run("Subject: x\n\n", "deliver", testUser)
	if r.code != 73 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("into a root-owned directory: exit %d %q; want 73", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(closed, testUser)); err == nil {
		t.Error("deliver created a Maildir with root's rights")
	}

	// A virtual user without uid and gid is delivered as mail_owner.
	users := filepath.Join(s.dir, "users")
	os.WriteFile(users, []byte("dora:*\n"), 0o644)
	vmail := filepath.Join(s.dir, "vmail")
	os.Mkdir(vmail, 0o755)
	os.Chown(vmail, uid, gid)
	s.conf2("users_file = "+users, "mail_owner = "+testUser, "mail_dir = "+filepath.Join(vmail, "%u"))
	if r := s.run("Subject: x\n\n", "deliver", "dora"); r.code != 0 {
		t.Fatalf("virtual user as mail_owner: exit %d %s", r.code, r.stderr)
	}
	st, _ := os.Stat(mailFiles(t, filepath.Join(vmail, "dora"), "new")[0])
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != uid {
		t.Errorf("dora's message owned by uid %d, want mail_owner's %d", sys.Uid, uid)
	}

	// Run as the user: its own mailbox (here, mail_owner's virtual users)
	// and nobody else's.
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is missing")
	}
	bin := filepath.Join(s.dir, "deliver")
	copyFile(t, filepath.Join(binDir, "deliver"), bin)
	asUser := func(users string, args ...string) result {
		conf := filepath.Join(s.dir, "user.conf")
		text := fmt.Sprintf("hostname = %s\nusers_file = %s\nmail_owner = %s\nmail_dir = %s\n", s.hostname, users, testUser, filepath.Join(vmail, "%u"))
		os.WriteFile(conf, []byte(text), 0o644)
		cmd := exec.Command("setpriv", append([]string{"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", bin, "-C", conf}, args...)...)
		cmd.Stdin = strings.NewReader("Subject: x\n\n")
		return runCmd(t, cmd)
	}
	if r := asUser(users, "dora"); r.code != 0 {
		t.Errorf("as %s to its own virtual user: exit %d %s", testUser, r.code, r.stderr)
	}
	if r := asUser("", "root"); r.code != 77 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("as %s to root: exit %d %q; want 77", testUser, r.code, r.stderr)
	}
}
