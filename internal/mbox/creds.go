package mbox

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// asUser runs fn with the file-system identity of uid:gid and no
// supplementary groups, when this process is root; otherwise fn runs as the
// process is.
//
// Go's Setuid and friends change every thread of the process, which a daemon
// delivering for many users at once cannot afford. Linux keeps the identity
// used for file access per thread (fsuid, fsgid, groups), so fn runs on a
// goroutine locked to its own OS thread whose identity alone is changed. The
// goroutine ends without unlocking, and the runtime then ends the thread
// rather than hand it to other goroutines; nor does the runtime start new
// threads from a locked one (it uses its template thread). Changing fsuid
// away from 0 also drops the thread's file capabilities (CAP_DAC_OVERRIDE,
// CAP_FOWNER, ...; capabilities(7)), so the kernel checks the user's
// permissions exactly as for the user's own process, and files created
// belong to the user.
func asUser(uid, gid int, fn func() error) error {
	if os.Geteuid() != 0 {
		return fn()
	}
	if uid <= 0 || gid <= 0 {
		// Postfix's local(8) never writes a file as root either: the
		// caller maps root to an unprivileged user (default_privs).
		return fmt.Errorf("refusing to deliver with uid %d gid %d", uid, gid)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: this thread's identity is the user's now.
		if err := setThreadIdentity(uid, gid); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// setThreadIdentity changes the calling thread's groups, fsgid and fsuid
// (raw system calls in x/sys/unix, which act on this thread only), and checks
// that the kernel took them: setfsuid reports no errors.
func setThreadIdentity(uid, gid int) error {
	if err := unix.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	unix.SetfsgidRetGid(gid)
	unix.SetfsuidRetUid(uid)
	// An invalid id changes nothing and returns the current one.
	if g, _ := unix.SetfsgidRetGid(-1); g != gid {
		return fmt.Errorf("setfsgid %d: still %d", gid, g)
	}
	if u, _ := unix.SetfsuidRetUid(-1); u != uid {
		return fmt.Errorf("setfsuid %d: still %d", uid, u)
	}
	return nil
}
