package mailbox

import (
	"fmt"
	"os"

	"yubin/internal/auth"
	"yubin/internal/identity"
)

// asUser runs fn with u's rights (package comment, Privileges): as root, on
// a thread of its own with u's file-system identity (internal/identity), so
// that deliveries to several users may run at once; otherwise only for the
// caller's own mailboxes.
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
	var result error
	if err := identity.AsUser(u.UID, u.GID, func() error { result = fn(); return nil }); err != nil {
		return fmt.Errorf("%w to %d:%d: %v", errPrivilege, u.UID, u.GID, err)
	}
	return result
}
