package identity

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// As root, files made under AsUser belong to the user, the user's rights
// apply, and the rest of the process keeps root's.
func TestAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const nobody = 65534 // nobody:nogroup on Debian
	open := t.TempDir()
	os.Chmod(open, 0o777)
	os.Chmod(filepath.Dir(open), 0o755) // t.TempDir's parent is 0700
	closed := filepath.Join(open, "root-only")
	os.Mkdir(closed, 0o700)

	err := AsUser(nobody, nobody, func() error {
		if err := os.WriteFile(filepath.Join(open, "mine"), nil, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(closed, "no"), nil, 0o600); err == nil {
			t.Error("the user wrote into root's 0700 directory")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(open, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != nobody || sys.Gid != nobody {
		t.Errorf("file owned by %d:%d, want %d:%d", sys.Uid, sys.Gid, nobody, nobody)
	}
	if err := os.WriteFile(filepath.Join(closed, "root"), nil, 0o600); err != nil {
		t.Errorf("root lost its rights after AsUser: %v", err)
	}
	if err := AsUser(0, 0, func() error { return nil }); err == nil {
		t.Error("AsUser ran as root for someone")
	}
}
