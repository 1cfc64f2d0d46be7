package queue

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"yubin/internal/crashpoint"
	"yubin/internal/safeio"
)

// Writer writes one new message into the queue. Nothing is accepted until
// Commit returns nil; Abort (or a crash) leaves no trace in msg/.
type Writer struct {
	q    *Queue
	id   string
	f    *os.File
	w    *bufio.Writer
	done bool
}

// Create starts a new message with the given envelope; it assigns env.ID and,
// when zero, env.Arrival. The caller writes the message (LF line endings) and
// then calls Commit or Abort.
func (q *Queue) Create(env *Envelope) (*Writer, error) {
	if len(env.Recipients) == 0 {
		return nil, errors.New("queue: message has no recipients")
	}
	if env.Arrival.IsZero() {
		env.Arrival = time.Now()
	}
	env.V = formatVersion
	env.ID = newID(env.Arrival)
	line, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("queue %s: envelope: %w", env.ID, err)
	}
	name := q.path(tmpDir, env.ID)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", env.ID, err)
	}
	crashpoint.Here("created")
	// The umask of whoever runs sendmail must not hide the message from the
	// runner, which reads it through the group.
	if err := f.Chmod(0o640); err != nil {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("queue %s: %w", env.ID, err)
	}
	w := &Writer{q: q, id: env.ID, f: f, w: bufio.NewWriterSize(f, 64<<10)}
	w.w.Write(line)
	w.w.WriteByte('\n')
	return w, nil
}

// ID is the new message's queue ID.
func (w *Writer) ID() string { return w.id }

// Write appends message bytes.
func (w *Writer) Write(p []byte) (int, error) { return w.w.Write(p) }

// WriteString appends message bytes.
func (w *Writer) WriteString(s string) (int, error) { return w.w.WriteString(s) }

// Commit makes the message durable and visible: flush, fsync, rename into
// msg/, fsync msg/. When it returns nil the message survives any crash.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("queue %s: already committed or aborted", w.id)
	}
	w.done = true
	tmp := w.q.path(tmpDir, w.id)
	fail := func(step string, err error) error {
		w.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("queue %s: %s: %w", w.id, step, err)
	}
	if err := w.w.Flush(); err != nil {
		return fail("write", err)
	}
	crashpoint.Here("written")
	if err := w.f.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := w.f.Close(); err != nil {
		return fail("close", err)
	}
	crashpoint.Here("synced")
	if err := renameNoReplace(tmp, w.q.path(msgDir, w.id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue %s: commit: %w", w.id, err)
	}
	crashpoint.Here("renamed")
	if err := safeio.SyncDir(w.q.path(msgDir)); err != nil {
		// The message is visible and will most likely be delivered, but
		// durability was not confirmed: the caller must not acknowledge it.
		// Leaving it queued can at worst cause a duplicate, never a loss.
		return fmt.Errorf("queue %s: fsync %s: %w", w.id, msgDir, err)
	}
	crashpoint.Here("committed")
	return nil
}

// Abort discards the message. It is safe after Commit (it does nothing then).
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.q.path(tmpDir, w.id))
}

// renameNoReplace renames old to new, failing with os.ErrExist rather than
// replacing an existing new.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) {
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
	// The filesystem cannot do it atomically: link refuses to replace too.
	if err := os.Link(oldpath, newpath); err != nil {
		return err
	}
	return os.Remove(oldpath)
}
