// Package safeio writes files so that a crash at any instant leaves either
// the old content or the new, never a mixture, and so that what was written
// survives power loss once a call returns: the new content goes to a
// temporary file in the same directory, is fsync'd, renamed over the target,
// and the directory is fsync'd.
package safeio

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile replaces path atomically and durably with what write writes,
// with mode perm (not reduced by the umask).
func WriteFile(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	fail := func(step string, err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("%s: %s: %w", path, step, err)
	}
	if err := write(tmp); err != nil {
		return fail("write", err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail("chmod", err)
	}
	if err := tmp.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := tmp.Close(); err != nil {
		return fail("close", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("%s: %w", path, err)
	}
	return SyncDir(dir)
}
