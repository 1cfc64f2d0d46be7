package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"yubin/internal/auth"
)

// ErrWrongUser: the process is not root and not the user who logged in.
var ErrWrongUser = errors.New("the server runs as another user")

// BecomeUser makes the process u for good, as a session does after login:
// setgroups to u's gid alone, then setgid and setuid, which as root set the
// real, effective and saved ids, so nothing can switch back. Go's syscall
// package applies each call to every thread of the process (x/sys/unix's
// Setgroups would change one thread only). Not running as root, it only
// checks that the process already is u.
func BecomeUser(u *auth.User) error {
	if os.Geteuid() != 0 {
		if u.UID != os.Geteuid() {
			return fmt.Errorf("%w: uid %d cannot serve %s (uid %d)", ErrWrongUser, os.Geteuid(), u.Name, u.UID)
		}
		return nil
	}
	if err := syscall.Setgroups([]int{u.GID}); err != nil {
		return fmt.Errorf("setgroups %d: %w", u.GID, err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	if os.Geteuid() != u.UID || os.Getegid() != u.GID {
		return fmt.Errorf("still uid %d gid %d after switching to %d:%d", os.Geteuid(), os.Getegid(), u.UID, u.GID)
	}
	return nil
}
