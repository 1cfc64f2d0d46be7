package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A spare is a session's process started before its connection arrives,
// so that a client does not wait for a program to start (a fifth of a
// warm IMAP SELECT, most of a POP3 login): Spawn keeps one ready per
// listener. It runs "NAME -i ..." with spareEnv set and a unix socket as
// its standard input, on which Spawn sends the connection (SCM_RIGHTS);
// the spare makes it its standard input and output and goes on as any
// "-i" session. A spare that finds its configuration changed since it
// started runs itself again, so that every session sees the files as they
// are when it begins.
const spareEnv = "YUBIN_SPARE"

type spare struct {
	cmd *exec.Cmd
	ctl *os.File // Spawn's end of the socket
}

// startSpare starts newCmd's process as a spare.
func startSpare(newCmd func() *exec.Cmd) (*spare, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ctl, child := os.NewFile(uintptr(fds[0]), "spare"), os.NewFile(uintptr(fds[1]), "spare")
	defer child.Close()
	cmd := newCmd()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, spareEnv+"=1")
	cmd.Stdin, cmd.Stdout = child, child
	if err := cmd.Start(); err != nil {
		ctl.Close()
		return nil, err
	}
	return &spare{cmd: cmd, ctl: ctl}, nil
}

// hand gives conn to the spare, which from then on is the session.
func (s *spare) hand(conn *os.File) error {
	defer s.ctl.Close()
	return unix.Sendmsg(int(s.ctl.Fd()), []byte{0}, unix.UnixRights(int(conn.Fd())), nil, 0)
}

// discard stops a spare that was not used.
func (s *spare) discard() {
	s.ctl.Close() // a waiting spare reads the end and exits
	s.cmd.Wait()
}

// awaitSession is the spare's side: when this process is one, it waits for
// its connection and makes it standard input and output. Once the
// connection is there, a spare whose files changed (fresh reports false)
// runs itself again on it, without spareEnv. It returns errNoSession when
// Spawn went away without handing it a connection.
func awaitSession(fresh func() bool) error {
	if os.Getenv(spareEnv) == "" {
		return nil
	}
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(0, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fmt.Errorf("spare: %w", err)
	}
	if n == 0 {
		return errNoSession
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("spare: no connection in the message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return fmt.Errorf("spare: no connection in the message (%v)", err)
	}
	for _, to := range []int{0, 1} {
		if err := unix.Dup3(fds[0], to, 0); err != nil {
			return fmt.Errorf("spare: %w", err)
		}
	}
	unix.Close(fds[0])
	if fresh == nil || fresh() {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, spareEnv+"=") })
	return fmt.Errorf("spare: %w", syscall.Exec(self, os.Args, env))
}

// errNoSession: the spare was stopped before a connection came.
var errNoSession = errors.New("spare: no session")

// fileStamp is what tells a file's change: modification time, size, inode.
type fileStamp struct {
	path        string
	mtime, size int64
	ino         uint64
	missing     bool
}

// stampFiles returns the stamps of the files at paths ("" are skipped).
func stampFiles(paths ...string) []fileStamp {
	var out []fileStamp
	for _, p := range paths {
		if p != "" {
			out = append(out, stamp(p))
		}
	}
	return out
}

func stamp(path string) fileStamp {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileStamp{path: path, missing: true}
	}
	return fileStamp{path: path, mtime: st.Mtim.Nano(), size: st.Size, ino: st.Ino}
}

// unchanged reports whether every file still has its stamp.
func unchanged(stamps []fileStamp) bool {
	for _, s := range stamps {
		if stamp(s.path) != s {
			return false
		}
	}
	return true
}
