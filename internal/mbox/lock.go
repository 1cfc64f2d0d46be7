package mbox

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Locking defaults: Postfix's deliver_lock_attempts (20) × deliver_lock_delay
// (1 s), and its stale_lock_time (500 s) for dot-lock files.
const (
	DefaultLockTimeout = 20 * time.Second
	staleLockAge       = 500 * time.Second
	maxLockDelay       = time.Second
)

// errLocked: someone else held the mailbox for the whole LockTimeout.
var errLocked = errors.New("mailbox is locked by another process")

// lock takes the mailbox's two locks as Debian Policy §11.6 asks: fcntl,
// then the dot-lock, neither blocking; when the second cannot be had, the
// first is let go before waiting (a growing delay) and starting over, so no
// order that another program takes them in can deadlock with us. It gives up
// at timeout or when ctx ends. The returned function releases both.
//
// The kernel lock is an open file description lock (F_OFD_SETLK, Linux 3.15):
// it conflicts with the classic fcntl locks that mutt, mailx, procmail,
// Dovecot and Postfix take, but belongs to this open file rather than to the
// process, so goroutines of one process exclude each other too and closing
// another descriptor of the file elsewhere in the process does not drop it.
//
// The dot-lock is path.lock, created with O_EXCL. As Postfix does for file
// deliveries (MBOX_DOT_LOCK_MAY_FAIL), a dot-lock that cannot be created for a
// reason other than "exists" (a directory the user may not write) is skipped:
// the kernel lock still holds. A dot-lock older than 500 s is stale and
// removed.
func lock(ctx context.Context, f *os.File, path string, timeout time.Duration) (func(), error) {
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	fd := f.Fd()
	cmd := unix.F_OFD_SETLK
	setLock := func(typ int16) error {
		lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
		err := unix.FcntlFlock(fd, cmd, &lk)
		if errors.Is(err, unix.EINVAL) && cmd == unix.F_OFD_SETLK {
			cmd = unix.F_SETLK // a kernel without OFD locks
			err = unix.FcntlFlock(fd, cmd, &lk)
		}
		return err
	}
	dot := path + ".lock"
	for {
		err := setLock(unix.F_WRLCK)
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
			return nil, &os.PathError{Op: "fcntl lock", Path: path, Err: err}
		}
		if err == nil {
			dotted, held := dotLock(dot)
			if !held {
				release := func() {
					if dotted {
						unix.Unlink(dot)
					}
					setLock(unix.F_UNLCK)
				}
				return release, nil
			}
			setLock(unix.F_UNLCK)
		}
		if !time.Now().Before(deadline) {
			return nil, errLocked
		}
		t := time.NewTimer(min(delay, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, maxLockDelay)
	}
}

// dotLock tries once to create the dot-lock. dotted: we hold it; held:
// someone else does.
func dotLock(dot string) (dotted, held bool) {
	for range 2 {
		lfd, err := unix.Open(dot, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(lfd)
			return true, false
		}
		if !errors.Is(err, unix.EEXIST) {
			return false, false // may fail: the kernel lock is enough
		}
		var st unix.Stat_t
		if unix.Lstat(dot, &st) != nil || time.Since(time.Unix(st.Ctim.Unix())) <= staleLockAge {
			return false, true
		}
		unix.Unlink(dot) // stale: remove, and try once more
	}
	return false, true
}
