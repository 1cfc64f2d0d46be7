package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// IDs returns the IDs of the committed messages, oldest first.
func (q *Queue) IDs() ([]string, error) {
	d, err := os.Open(q.path(msgDir))
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	ids := names[:0]
	for _, n := range names {
		if ValidID(n) {
			ids = append(ids, n)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Read returns the envelope of message id with its recipients' state,
// without reading the message body and without waiting for its lock.
func (q *Queue) Read(id string) (*Envelope, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("queue: %w: %q", ErrBadID, id)
	}
	f, err := os.Open(q.path(msgDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("queue %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", id, err)
	}
	defer f.Close()
	env, _, err := q.load(f, id)
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", id, err)
	}
	// A shared lock we cannot get means a runner holds the exclusive one.
	// Ours lasts microseconds; a runner that meets it skips the message
	// until its next look, as it skips any locked message.
	env.Active = errors.Is(unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
	return env, nil
}

// load reads the envelope from an open message file, applies its state log
// (which must be message id) and sets its Size; it returns where the message starts.
func (q *Queue) load(f *os.File, id string) (*Envelope, int64, error) {
	// A small buffer: a listing reads the envelope line, not the message
	// behind it (one read for up to a few recipients; more for more).
	env, off, err := readEnvelope(bufio.NewReaderSize(f, 512))
	if err != nil {
		return nil, 0, corrupt(err)
	}
	if env.ID != id {
		return nil, 0, corrupt(fmt.Errorf("envelope: file holds message %s", env.ID))
	}
	if err := q.readState(env); err != nil {
		return nil, 0, corrupt(err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	env.Size = st.Size() - off
	return env, off, nil
}

// List reads every envelope in the queue, oldest first. A message that is
// delivered while the list is being made is left out; one that cannot be read
// is reported in problems and the listing goes on.
func (q *Queue) List() (envs []*Envelope, problems []error, err error) {
	ids, err := q.IDs()
	if err != nil {
		return nil, nil, err
	}
	for _, id := range ids {
		env, err := q.Read(id)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			problems = append(problems, err)
		default:
			envs = append(envs, env)
		}
	}
	return envs, problems, nil
}

// Clean removes what crashed writers left behind: files in tmp/ older than
// age, and state logs whose message is gone.
func (q *Queue) Clean(age time.Duration) error {
	var errs []error
	tmps, err := os.ReadDir(q.path(tmpDir))
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	for _, e := range tmps {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < age {
			continue
		}
		if err := os.Remove(q.path(tmpDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	states, err := os.ReadDir(q.path(stateDir))
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	for _, e := range states {
		if _, err := os.Lstat(q.path(msgDir, e.Name())); errors.Is(err, fs.ErrNotExist) {
			if err := os.Remove(q.path(stateDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
