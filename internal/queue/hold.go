package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"yubin/internal/safeio"
)

// Queue operations beside delivery, as Postfix's postsuper offers them.
//
//	queue_dir/
//	  hold/ID     empty file: message ID is on hold; runners skip it until
//	              Release removes the file (postsuper -h / -H)
//	  corrupt/ID  a message file that could not be read, moved aside with
//	              its state log as corrupt/ID.state, for a human to look at
//
// Both directories are made when first needed, mode 2770 like the others.

const (
	holdDir    = "hold"
	corruptDir = "corrupt"
)

// ErrCorrupt: a message file or its state log cannot be parsed (a damaged
// or truncated file); MoveCorrupt puts it aside.
var ErrCorrupt = errors.New("corrupt queue file")

// corrupt marks err as a damaged file, unless it is an I/O error: a disk
// that cannot be read now is not a reason to move mail aside.
func corrupt(err error) error {
	var pe *fs.PathError
	if err == nil || errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

func (q *Queue) mkdir(name string) error {
	err := os.Mkdir(q.path(name), 0o770)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Chmod(q.path(name), 0o770|os.ModeSetgid)
}

// Hold puts message id on hold: no runner attempts it until Release.
func (q *Queue) Hold(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("queue: %w: %q", ErrBadID, id)
	}
	if _, err := os.Lstat(q.path(msgDir, id)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue %s: %w", id, ErrNotFound)
	}
	if err := q.mkdir(holdDir); err != nil {
		return fmt.Errorf("queue %s: hold: %w", id, err)
	}
	f, err := os.OpenFile(q.path(holdDir, id), os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("queue %s: hold: %w", id, err)
	}
	f.Close()
	if err := safeio.SyncDir(q.path(holdDir)); err != nil {
		return fmt.Errorf("queue %s: hold: %w", id, err)
	}
	return nil
}

// Release takes message id off hold.
func (q *Queue) Release(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("queue: %w: %q", ErrBadID, id)
	}
	err := os.Remove(q.path(holdDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue %s: not on hold", id)
	}
	if err != nil {
		return fmt.Errorf("queue %s: release: %w", id, err)
	}
	return nil
}

// Held reports whether message id is on hold.
func (q *Queue) Held(id string) bool {
	_, err := os.Lstat(q.path(holdDir, id))
	return err == nil
}

// Delete removes message id from the queue without delivering it (postsuper
// -d). It fails with ErrLocked while a runner is delivering it.
func (q *Queue) Delete(id string) error {
	m, err := q.Lock(id)
	if errors.Is(err, ErrCorrupt) {
		return q.removeFiles(id)
	}
	if err != nil {
		return err
	}
	if err := m.Remove(); err != nil {
		return err
	}
	os.Remove(q.path(holdDir, id))
	return nil
}

func (q *Queue) removeFiles(id string) error {
	if err := os.Remove(q.path(msgDir, id)); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	safeio.SyncDir(q.path(msgDir))
	os.Remove(q.path(stateDir, id))
	os.Remove(q.path(holdDir, id))
	return nil
}

// Requeue makes every deferred recipient of message id due now (postsuper
// -r): the next queue run routes it afresh, with the configuration of the
// time (nothing about routing is kept in the queue).
func (q *Queue) Requeue(id string) error {
	m, err := q.Lock(id)
	if err != nil {
		return err
	}
	defer m.Close()
	now := time.Now()
	for i, rc := range m.Envelope().Recipients {
		if rc.State == Deferred {
			if err := m.Mark(i, Deferred, rc.LastReply, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// MoveCorrupt moves message id and its state log into corrupt/, where no
// runner or listing looks, so that one damaged file cannot stop the queue.
func (q *Queue) MoveCorrupt(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("queue: %w: %q", ErrBadID, id)
	}
	if err := q.mkdir(corruptDir); err != nil {
		return fmt.Errorf("queue %s: %w", id, err)
	}
	if err := os.Rename(q.path(msgDir, id), q.path(corruptDir, id)); err != nil {
		return fmt.Errorf("queue %s: move to %s: %w", id, corruptDir, err)
	}
	err := os.Rename(q.path(stateDir, id), q.path(corruptDir, id+".state"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue %s: move state to %s: %w", id, corruptDir, err)
	}
	if err := safeio.SyncDir(q.path(corruptDir)); err != nil {
		return err
	}
	return safeio.SyncDir(q.path(msgDir))
}

// HeldIDs returns the IDs of the messages on hold (one directory read).
func (q *Queue) HeldIDs() map[string]bool {
	names, err := os.ReadDir(q.path(holdDir))
	if err != nil {
		return nil
	}
	held := make(map[string]bool, len(names))
	for _, e := range names {
		if ValidID(e.Name()) {
			held[e.Name()] = true
		}
	}
	return held
}
