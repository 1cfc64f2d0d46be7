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
	dirGroups sync.Map // cleaned path → *group
	fsGroups  sync.Map // device → *group
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

// join syncs fd in the group of key in set, made with sync when there is
// none. An idle group leaves the set, which so holds only busy ones.
func join(set *sync.Map, key any, sync func(fds []int) error, fd int) error {
	g, _ := set.LoadOrStore(key, &group{sync: sync, set: set, key: key})
	return g.(*group).do(fd)
}

// A group runs the syncs of its callers one batch at a time: the calls
// that arrive while a batch is being synced form the next batch.
type group struct {
	sync    func(fds []int) error
	set     *sync.Map
	key     any
	mu      sync.Mutex
	running bool // a goroutine is syncing batches
	waiting []request
}

// A request is one caller's descriptor, valid until it is answered.
type request struct {
	fd   int
	done chan error
}

// do syncs fd with the other callers waiting.
func (g *group) do(fd int) error {
	done := make(chan error, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, request{fd, done})
	if !g.running {
		g.running = true
		go g.flush()
	}
	g.mu.Unlock()
	return <-done
}

// flush syncs batches until none is waiting.
func (g *group) flush() {
	for {
		g.mu.Lock()
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			// A caller that loaded g before this still finds it working.
			g.set.CompareAndDelete(g.key, g)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		fds := make([]int, len(batch))
		for i, r := range batch {
			fds[i] = r.fd
		}
		err := g.sync(fds)
		for _, r := range batch {
			r.done <- err
		}
	}
}
