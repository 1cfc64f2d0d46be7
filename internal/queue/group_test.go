package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Many writers committing at once through one Committer: every message is
// in msg/ with its bytes, nothing is left in tmp/.
func TestCommitterConcurrent(t *testing.T) {
	q := newQueue(t)
	c := q.NewCommitter()
	const n = 50
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			w, err := q.Create(&Envelope{From: "a@example.org", Recipients: []*Recipient{{Addr: "b@example.org"}}})
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(w, "Subject: %d\n\nbody %d\n", i, i)
			if err := c.Commit(w); err != nil {
				t.Error(err)
				return
			}
			w.Abort() // does nothing after Commit
			ids[i] = w.ID()
		})
	}
	wg.Wait()
	for i, id := range ids {
		m, err := q.Lock(id)
		if err != nil {
			t.Fatalf("message %d (%s): %v", i, id, err)
		}
		b := make([]byte, 100)
		k, _ := m.Body().Read(b)
		if want := fmt.Sprintf("Subject: %d\n\nbody %d\n", i, i); string(b[:k]) != want {
			t.Errorf("message %d: %q, want %q", i, b[:k], want)
		}
		m.Close()
	}
	if tmp, _ := os.ReadDir(filepath.Join(q.Dir(), tmpDir)); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d files", len(tmp))
	}
	w, _ := q.Create(&Envelope{From: "a@example.org", Recipients: []*Recipient{{Addr: "b@example.org"}}})
	w.Abort()
	if err := c.Commit(w); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

// A rename that fails (the ID is taken) fails that writer alone.
func TestCommitterRenameFailure(t *testing.T) {
	q := newQueue(t)
	c := q.NewCommitter()
	w, err := q.Create(&Envelope{From: "a@example.org", Recipients: []*Recipient{{Addr: "b@example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(q.Dir(), msgDir, w.ID()), []byte("taken"), 0o640)
	if err := c.Commit(w); err == nil {
		t.Fatal("Commit replaced an existing message")
	}
	if tmp, _ := os.ReadDir(filepath.Join(q.Dir(), tmpDir)); len(tmp) != 0 {
		t.Errorf("tmp/ holds %d files", len(tmp))
	}
}
