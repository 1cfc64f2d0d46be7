package mailbox

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"yubin/internal/auth"
)

// credentials serialises deliveries that switch the process's effective ids.
var credentials sync.Mutex

// asUser runs fn with u's rights (package comment, Privileges).
func (d *Deliverer) asUser(u *auth.User, fn func() error) error {
	euid := os.Geteuid()
	if euid != 0 {
		if u.UID != euid {
			return fmt.Errorf("%w: uid %d may deliver only into its own mailboxes, not into %s's (uid %d)",
				ErrNotPermitted, euid, u.Name, u.UID)
		}
		return fn()
	}
	if u.UID == 0 {
		return fn() // root's own mail, with root's rights
	}
	credentials.Lock()
	defer credentials.Unlock()
	groups, err := unix.Getgroups()
	if err != nil {
		return fmt.Errorf("%w: getgroups: %v", errPrivilege, err)
	}
	egid := os.Getegid()
	// syscall's Setgroups, not unix's: it applies to every thread.
	if err := syscall.Setgroups([]int{u.GID}); err != nil {
		return fmt.Errorf("%w to gid %d: setgroups: %v", errPrivilege, u.GID, err)
	}
	if err := unix.Setresgid(-1, u.GID, -1); err != nil {
		return d.restore(egid, groups, fmt.Errorf("%w to gid %d: %v", errPrivilege, u.GID, err))
	}
	if err := unix.Setresuid(-1, u.UID, -1); err != nil {
		return d.restore(egid, groups, fmt.Errorf("%w to uid %d: %v", errPrivilege, u.UID, err))
	}
	return d.restore(egid, groups, fn())
}

// restore makes the process root again with egid and groups and returns
// err; when that fails the Deliverer is broken for good.
func (d *Deliverer) restore(egid int, groups []int, err error) error {
	var rerr error
	if e := unix.Setresuid(-1, 0, -1); e != nil {
		rerr = fmt.Errorf("seteuid 0: %v", e)
	} else if e := unix.Setresgid(-1, egid, -1); e != nil {
		rerr = fmt.Errorf("setegid %d: %v", egid, e)
	} else if e := syscall.Setgroups(groups); e != nil {
		rerr = fmt.Errorf("setgroups: %v", e)
	}
	if rerr != nil {
		broken := fmt.Errorf("%w back to root: %v", errPrivilege, rerr)
		d.broken.Store(&broken)
		return errors.Join(err, broken)
	}
	return err
}
