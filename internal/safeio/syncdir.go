package safeio

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// SyncDir makes the entries of directory dir (names created, renamed or
// removed in it) durable.
//
// Concurrent calls for one directory share their fsyncs (group commit):
// a call that arrives while an fsync of dir is running waits for the next
// one, which serves every call that arrived in the meantime. The guarantee
// is unchanged (a call returns after an fsync that began after the call
// did), and N deliveries at once into one Maildir cost about two fsyncs of
// new/ instead of N. Each caller opens the directory itself, so the
// permission to do so is checked with its own (file-system) identity.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = join(&dirGroups, filepath.Clean(dir), fsyncFirst, int(d.Fd()))
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// SyncFile makes f's data and metadata durable, as f.Sync does, but
// concurrent calls for files of one file system share the work: a call
// alone is one fsync(2); the calls that arrive while it runs are served
// together by one syncfs(2) of that file system, which writes every dirty
// file on it (so each of theirs) and costs a disk flush or two however
// many files it covers. That is how N deliveries at once cost about two
// flushes instead of N; the guarantee is fsync's.
func SyncFile(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if err := join(&fsGroups, st.Dev, syncAll, int(f.Fd())); err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return nil
}

var (
	dirGroups sync.Map // cleaned path → *Batcher[request]
	fsGroups  sync.Map // device → *Batcher[request]
)

// fsyncFirst syncs one directory, which every descriptor of a dirGroups
// batch names.
func fsyncFirst(fds []int) error { return unix.Fsync(fds[0]) }

// syncAll syncs the files of a fsGroups batch: one by fsync, more by one
// syncfs of their file system.
func syncAll(fds []int) error {
	if len(fds) == 1 {
		return unix.Fsync(fds[0])
	}
	return unix.Syncfs(fds[0])
}

// join syncs fd in the group of key in set, which syncs its batches with
// syncFDs. An idle group leaves the set, which so holds only busy ones.
func join(set *sync.Map, key any, syncFDs func(fds []int) error, fd int) error {
	g, loaded := set.Load(key)
	if !loaded {
		b := &Batcher[request]{Flush: func(batch []request) {
			fds := make([]int, len(batch))
			for i, r := range batch {
				fds[i] = r.fd
			}
			err := syncFDs(fds)
			for _, r := range batch {
				r.done <- err
			}
		}}
		// A caller that loaded b before it left the set still finds it
		// working.
		b.Idle = func() { set.CompareAndDelete(key, b) }
		g, _ = set.LoadOrStore(key, b)
	}
	done := make(chan error, 1)
	g.(*Batcher[request]).Add(request{fd, done})
	return <-done
}

// A request is one caller's descriptor, valid until it is answered.
type request struct {
	fd   int
	done chan error
}
