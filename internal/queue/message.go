package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"yubin/internal/crashpoint"
	"yubin/internal/safeio"
)

// Message is a queued message held under its delivery lock.
type Message struct {
	q     *Queue
	f     *os.File // msg/ID, flock'd
	env   *Envelope
	off   int64    // where the message starts after the envelope line
	state *os.File // state/ID, opened for append on first Flush
	noted []byte   // state log lines not yet flushed
}

// Lock opens message id for delivery and takes its lock without waiting:
// ErrLocked when another process holds it, ErrNotFound when it is gone.
func (q *Queue) Lock(id string) (*Message, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("queue: %w: %q", ErrBadID, id)
	}
	name := q.path(msgDir, id)
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("queue %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("queue %s: %w", id, ErrLocked)
		}
		return nil, fmt.Errorf("queue %s: lock: %w", id, err)
	}
	// The holder before us may have finished and removed the message
	// between our open and our flock: then we hold a lock on nothing.
	if gone, err := unlinked(f, name); err != nil || gone {
		f.Close()
		if err == nil {
			err = ErrNotFound
		}
		return nil, fmt.Errorf("queue %s: %w", id, err)
	}
	env, off, err := q.load(f, id)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("queue %s: %w", id, err)
	}
	return &Message{q: q, f: f, env: env, off: off}, nil
}

// unlinked reports whether the open file f is no longer the file at name.
func unlinked(f *os.File, name string) (bool, error) {
	fst, err := f.Stat()
	if err != nil {
		return false, err
	}
	nst, err := os.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !os.SameFile(fst, nst), nil
}

// readState applies state/ID to env.
func (q *Queue) readState(env *Envelope) error {
	log, err := os.ReadFile(q.path(stateDir, env.ID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return env.applyLog(log)
}

// Envelope is the message's envelope with each recipient's current state.
func (m *Message) Envelope() *Envelope { return m.env }

// Body returns a reader of the message (header and body, LF line endings).
// Each call starts at the beginning.
func (m *Message) Body() io.Reader {
	return io.NewSectionReader(m.f, m.off, m.env.Size)
}

// Mark records the outcome of one delivery attempt to recipient i durably
// (appended to the state log and fsync'd) before it returns: Note, then
// Flush. next is when a Deferred recipient is due again.
func (m *Message) Mark(i int, s State, reply string, next time.Time) error {
	if err := m.Note(i, s, reply, next); err != nil {
		return err
	}
	return m.Flush()
}

// Note records the outcome of one delivery attempt to recipient i in the
// Envelope at once and in the state log at the next Flush or Close, so
// that the outcomes of one attempt cost one fsync together, or none when
// the message is then removed (Remove discards them: its removal says
// more). Until then a crash forgets them, and the attempt is made again.
func (m *Message) Note(i int, s State, reply string, next time.Time) error {
	rec := record{Rcpt: i, State: s, At: time.Now(), Reply: reply, Next: next}
	if s != Deferred {
		rec.Next = time.Time{}
	}
	if err := m.env.apply(&rec); err != nil {
		return fmt.Errorf("queue %s: %w", m.env.ID, err)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("queue %s: %w", m.env.ID, err)
	}
	m.noted = append(append(m.noted, line...), '\n')
	return nil
}

// Flush writes the outcomes noted since the last Flush to the state log
// and fsyncs it.
func (m *Message) Flush() error {
	if len(m.noted) == 0 {
		return nil
	}
	if err := m.appendState(m.noted); err != nil {
		return fmt.Errorf("queue %s: state log: %w", m.env.ID, err)
	}
	m.noted = m.noted[:0]
	crashpoint.Here("logged")
	return nil
}

// MarkWarned records durably that a delay warning about recipients rcpts
// has been queued, so that no later attempt, by this process or another,
// sends it again. The caller commits the warning first: a crash between
// the two repeats the warning, never loses it.
func (m *Message) MarkWarned(rcpts []int) error {
	rec := record{Warned: rcpts, At: time.Now()}
	if err := m.env.apply(&rec); err != nil {
		return fmt.Errorf("queue %s: %w", m.env.ID, err)
	}
	line, err := json.Marshal(warning{Rcpt: -1, Warned: rec.Warned, At: rec.At})
	if err != nil {
		return fmt.Errorf("queue %s: %w", m.env.ID, err)
	}
	// After the outcomes noted before it, in the same fsync.
	m.noted = append(append(m.noted, line...), '\n')
	return m.Flush()
}

func (m *Message) appendState(line []byte) error {
	if m.state == nil {
		name := m.q.path(stateDir, m.env.ID)
		_, statErr := os.Lstat(name)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return err
		}
		if errors.Is(statErr, fs.ErrNotExist) {
			// A new log must survive a crash as an entry, not only as data.
			if err := f.Sync(); err == nil {
				err = safeio.SyncDir(m.q.path(stateDir))
			}
			if err != nil {
				f.Close()
				return err
			}
		}
		m.state = f
	}
	if _, err := m.state.Write(line); err != nil {
		return err
	}
	return m.state.Sync()
}

// Remove deletes a finished message from the queue, and the outcomes noted
// of it with it; the lock goes too. When it fails before the message is
// gone, Close still writes the notes.
func (m *Message) Remove() error {
	id := m.env.ID
	_, err := os.Lstat(m.q.path(stateDir, id))
	logged := err == nil || m.state != nil
	if err := os.Remove(m.q.path(msgDir, id)); err != nil {
		return fmt.Errorf("queue %s: remove: %w", id, err) // Close writes the notes
	}
	m.noted = nil // the message is gone, and what was noted of it
	if !logged {
		// Without a log the removal needs no fsync: were it undone by a
		// crash, the message would come back with no recipient done, and
		// the attempt that just ended would be made again, nothing more.
		return m.Close()
	}
	if err := safeio.SyncDir(m.q.path(msgDir)); err != nil {
		return fmt.Errorf("queue %s: remove: fsync %s: %w", id, msgDir, err)
	}
	// Only now may the log go: were the message to come back after a crash,
	// its log must still say who has it already.
	if err := os.Remove(m.q.path(stateDir, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue %s: remove state: %w", id, err)
	}
	return m.Close()
}

// Close flushes the outcomes noted and releases the lock.
func (m *Message) Close() error {
	var err error
	if m.f != nil {
		err = m.Flush()
	}
	if m.state != nil {
		m.state.Close()
		m.state = nil
	}
	if m.f == nil {
		return err
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	m.f = nil
	return err
}
