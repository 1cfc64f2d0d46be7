package safeio

import "sync"

// A Batcher runs Flush on the items added while it is idle, and on those
// added while it runs as the next batch, one batch at a time, in a
// goroutine of its own: the shape of every group commit here (a batch
// costs one sync however many items it holds; an item alone is a batch of
// one, with no wait added). Items carry their own way to be answered.
type Batcher[T any] struct {
	Flush func(batch []T)
	// Idle, when not nil, is called once no item is left, with the lock
	// held.
	Idle func()

	mu      sync.Mutex
	running bool // a goroutine is flushing batches
	waiting []T
}

// Add queues item for the next batch.
func (b *Batcher[T]) Add(item T) {
	b.mu.Lock()
	b.waiting = append(b.waiting, item)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
}

// run flushes batches until none is waiting.
func (b *Batcher[T]) run() {
	for {
		b.mu.Lock()
		batch := b.waiting
		b.waiting = nil
		if len(batch) == 0 {
			b.running = false
			if b.Idle != nil {
				b.Idle()
			}
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.Flush(batch)
	}
}
