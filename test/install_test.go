package test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// make install into a DESTDIR lays out what a distribution package would:
// binaries (sendmail and mailq setgid to the mail group), man pages, the
// sample configuration, the queue, and with SYSTEM_MTA=1 the links that make
// yubin the system's sendmail.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/usr", "SYSTEM_MTA=1")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	setgid := os.Geteuid() == 0
	if _, err := user.LookupGroup("mail"); err != nil {
		setgid = false
	}
	files := []struct {
		path string
		mode os.FileMode
	}{
		{"/usr/sbin/sendmail", 0o755},
		{"/usr/bin/mailq", 0o755},
		{"/usr/share/man/man8/sendmail.8", 0o644},
		{"/usr/share/man/man1/mailq.1", 0o644},
		{"/usr/share/man/man5/yubin.conf.5", 0o644},
		{"/etc/yubin/yubin.conf", 0o644},
		{"/etc/aliases", 0o644},
		{"/usr/sbin/newaliases", 0o755},
	}
	for _, f := range files {
		st, err := os.Lstat(dest + f.path)
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		want := f.mode
		if setgid && strings.HasSuffix(f.path, "/sendmail") || setgid && strings.HasSuffix(f.path, "/mailq") {
			want |= os.ModeSetgid
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", f.path, st.Mode(), want)
		}
	}
	for link, target := range map[string]string{
		"/usr/lib/sendmail":   "/usr/sbin/sendmail",
		"/usr/bin/newaliases": "/usr/sbin/newaliases",
	} {
		if got, err := os.Readlink(dest + link); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want -> %s", link, got, err, target)
		}
	}
	// PREFIX=/usr puts sendmail where the link would go: no self-link.
	if st, err := os.Lstat(dest + "/usr/sbin/sendmail"); err != nil || st.Mode()&os.ModeSymlink != 0 {
		t.Errorf("/usr/sbin/sendmail is not the binary: %v %v", st.Mode(), err)
	}
	for _, d := range []string{"", "tmp", "msg", "state"} {
		st, err := os.Stat(filepath.Join(dest, "/var/spool/yubin", d))
		if err != nil || st.Mode().Perm() != 0o770 || st.Mode()&os.ModeSetgid == 0 {
			t.Errorf("queue dir %q: %v %v, want drwxrws---", d, st.Mode(), err)
		}
	}

	// The installed programs work on the installed queue.
	conf := filepath.Join(dest, "test.conf")
	os.WriteFile(conf, []byte("queue_dir = "+dest+"/var/spool/yubin\nhostname = host.example\n"), 0o644)
	send := exec.Command(dest+"/usr/sbin/sendmail", "-C", conf, "-i", "root")
	send.Stdin = strings.NewReader("Subject: installed\n\nhi\n")
	if r := runCmd(t, send); r.code != 0 {
		t.Fatalf("installed sendmail: exit %d %s", r.code, r.stderr)
	}
	r := runCmd(t, exec.Command(dest+"/usr/bin/mailq", "-C", conf))
	if r.code != 0 || !strings.Contains(r.stdout, "root@host.example") || !strings.Contains(r.stdout, "in 1 Request.") {
		t.Errorf("installed mailq: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
