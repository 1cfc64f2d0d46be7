package safeio

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
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
	err = syncShared(filepath.Clean(dir), d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// A dirGroup runs the fsyncs of one directory, one batch at a time.
type dirGroup struct {
	mu      sync.Mutex
	running bool // a goroutine is flushing batches
	waiting []chan error
}

var dirGroups sync.Map // cleaned path → *dirGroup

// syncShared fsyncs d (the directory key) with the other callers waiting.
func syncShared(key string, d *os.File) error {
	gi, _ := dirGroups.LoadOrStore(key, &dirGroup{})
	g := gi.(*dirGroup)
	done := make(chan error, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, done)
	if !g.running {
		// The flusher needs a descriptor of its own: this caller's goes
		// when the call returns.
		fd, err := syscall.Dup(int(d.Fd()))
		if err != nil {
			g.waiting = g.waiting[:len(g.waiting)-1]
			g.mu.Unlock()
			return err
		}
		g.running = true
		go g.flush(key, os.NewFile(uintptr(fd), key))
	}
	g.mu.Unlock()
	return <-done
}

// flush fsyncs f for each batch of waiting callers until none is left.
func (g *dirGroup) flush(key string, f *os.File) {
	defer f.Close()
	for {
		g.mu.Lock()
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			dirGroups.CompareAndDelete(key, g)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		err := f.Sync()
		for _, done := range batch {
			done <- err
		}
	}
}
