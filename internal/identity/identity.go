// Package identity runs work under a mail user's identity without changing
// the identity of the whole process, so that a daemon (the queue runner) or
// a program delivering to several users (deliver) can act for many users at
// once, each safely confined to that user's rights.
//
// Go's Setuid and friends change every thread of the process. Linux keeps
// the identity used for file access per thread (fsuid, fsgid and the
// supplementary groups), so AsUser runs its work on a goroutine locked to
// an OS thread of its own whose identity alone is changed, with raw system
// calls that act on that thread only. The goroutine ends without unlocking:
// the runtime then ends the thread rather than hand it to other goroutines,
// and it never starts new threads from a locked one. Changing fsuid away
// from 0 also drops the thread's file capabilities (CAP_DAC_OVERRIDE,
// CAP_FOWNER, ...; capabilities(7)), so the kernel checks the user's
// permissions exactly as for the user's own process, and the files it
// creates belong to the user.
package identity

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// AsUser runs fn with the file-system identity of uid:gid and no
// supplementary groups when this process is root; otherwise fn runs as the
// process is (the caller checks that this is right). It never runs fn as
// root for someone: uid or gid 0 is refused, as Postfix's local(8) never
// writes a user's file as root.
func AsUser(uid, gid int, fn func() error) error {
	if os.Geteuid() != 0 {
		return fn()
	}
	if uid <= 0 || gid <= 0 {
		return fmt.Errorf("refusing to act as uid %d gid %d", uid, gid)
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
// and checks that the kernel took them: setfsuid reports no errors.
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
