package test

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"yubin/internal/queue"
)

const (
	testUser  = "yubin-test"
	testGroup = "yubin-queue"
)

// ensureUser creates the system user and group the privilege tests run as.
func ensureUser(t *testing.T) (uid, gid, qgid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a user and a setgid binary")
	}
	if _, err := user.LookupGroup(testGroup); err != nil {
		if out, err := exec.Command("groupadd", "--system", testGroup).CombinedOutput(); err != nil {
			t.Skipf("groupadd: %v %s", err, out)
		}
	}
	if _, err := user.Lookup(testUser); err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", testUser).CombinedOutput(); err != nil {
			t.Skipf("useradd: %v %s", err, out)
		}
	}
	u, _ := user.Lookup(testUser)
	g, _ := user.LookupGroup(testGroup)
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	qgid, _ = strconv.Atoi(g.Gid)
	return uid, gid, qgid
}

// setgidSystem is a system installed as make install does: the queue owned
// by the queue group, and sendmail in the system's directory setgid to that
// group, beside copies of the programs named (its siblings). The function
// it returns runs one of them as the test user, with env added, in a
// private mount namespace where the system's yubin.conf is the default
// /etc/yubin/yubin.conf, so that the setgid binary is used exactly as after
// make install.
func setgidSystem(t *testing.T, siblings []string, extra ...string) (*system, int, int, func(stdin, env, prog string, args ...string) result) {
	t.Helper()
	uid, gid, qgid := ensureUser(t)
	s := newSystem(t, extra...)
	// The user must reach the configuration and the binary.
	for d := s.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(s.conf, 0o644)
	os.RemoveAll(s.queueDir) // made by root; make it as make install does
	if err := queue.New(s.queueDir).Init(0, qgid); err != nil {
		t.Fatal(err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &fs); err == nil && fs.Flags&0x2 != 0 { // ST_NOSUID
		t.Skipf("%s is mounted nosuid: a setgid binary cannot run there", s.dir)
	}
	sendmail := filepath.Join(s.dir, "sendmail")
	copyFile(t, filepath.Join(binDir, "sendmail"), sendmail)
	if err := os.Chown(sendmail, 0, qgid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sendmail, 0o755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	for _, p := range siblings {
		copyFile(t, filepath.Join(binDir, p), filepath.Join(s.dir, p))
	}
	etc := filepath.Join(s.dir, "etc")
	os.Mkdir(etc, 0o755)
	copyFile(t, s.conf, filepath.Join(etc, "yubin.conf"))
	os.MkdirAll("/etc/yubin", 0o755) // the mount point; left empty
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is missing")
	}
	asUser := func(stdin, env, prog string, args ...string) result {
		script := `mount --bind "$0" /etc/yubin && u=$1 g=$2 && shift 2 && exec setpriv --reuid="$u" --regid="$g" --clear-groups "$@"`
		cmd := exec.Command("unshare", append([]string{"--mount", "sh", "-c", script, etc,
			strconv.Itoa(uid), strconv.Itoa(gid), filepath.Join(s.dir, prog)}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		if env != "" {
			cmd.Env = append(cmd.Env, env)
		}
		cmd.Stdin = strings.NewReader(stdin)
		return runCmd(t, cmd)
	}
	return s, uid, qgid, asUser
}

// An ordinary user queues mail through sendmail installed setgid to the
// queue's group, as `make install` sets it up; naming another configuration
// costs the privilege, as sendmail 8's -C does.
func TestUnprivilegedUserEnqueues(t *testing.T) {
	s, uid, qgid, run := setgidSystem(t, nil)
	asUser := func(env string, args ...string) result {
		return run("Subject: from a user\n\nhi\n", env, "sendmail", args...)
	}

	r := asUser("", "-i", "root@example.org")
	if r.code != 0 {
		t.Fatalf("setgid sendmail as %s: exit %d %s", testUser, r.code, r.stderr)
	}
	envs := s.queue()
	if len(envs) != 1 || envs[0].User != testUser || envs[0].From != testUser+"@"+s.hostname {
		t.Fatalf("queued envelope: %+v", envs)
	}
	st, err := os.Stat(filepath.Join(s.queueDir, "msg", envs[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if int(sys.Uid) != uid || int(sys.Gid) != qgid || st.Mode().Perm() != 0o640 {
		t.Errorf("queue file owner %d:%d mode %v; want %d:%d 0640", sys.Uid, sys.Gid, st.Mode().Perm(), uid, qgid)
	}

	// Naming a configuration costs the privilege, as sendmail 8's -C does:
	// the queue then refuses the user.
	for _, how := range [][]string{{"YUBIN_CONF=/etc/yubin/yubin.conf", "-i", "root@example.org"}, {"", "-C", "/etc/yubin/yubin.conf", "-i", "root@example.org"}} {
		r := asUser(how[0], how[1:]...)
		if r.code != 75 || !strings.Contains(r.stderr, "permission denied") {
			t.Errorf("%v: exit %d %q; want 75 and permission denied", how, r.code, r.stderr)
		}
	}
	if envs := s.queue(); len(envs) != 1 {
		t.Errorf("queue holds %d messages, want 1", len(envs))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
