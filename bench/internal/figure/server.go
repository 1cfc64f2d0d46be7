package figure

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// StartServer runs a mailbox server (pop3d, imapd) standalone on a free
// loopback port, listenKey (pop3_listen, imap_listen) naming it, with one
// virtual user "bench" (password "bench") whose home is home and whose
// Maildir is home/maildir. It returns the port and a stop function.
func StartServer(prog, listenKey, base, home, maildir string) (int, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	users := filepath.Join(base, "users")
	conf := filepath.Join(base, "yubin.conf")
	os.WriteFile(users, []byte(fmt.Sprintf("bench:{PLAIN}bench:%d:%d:%s\n", os.Getuid(), os.Getgid(), home)), 0o600)
	os.WriteFile(conf, []byte(fmt.Sprintf("hostname = bench.test\nusers_file = %s\nmail_dir = ~/%s\n%s = 127.0.0.1:%d\n",
		users, maildir, listenKey, port)), 0o644)
	cmd := exec.Command(prog, "-C", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	stop := func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return 0, nil, fmt.Errorf("%s does not listen on %d", filepath.Base(prog), port)
		}
	}
}
