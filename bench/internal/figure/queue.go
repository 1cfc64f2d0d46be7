package figure

import (
	"fmt"

	"yubin/internal/queue"
)

// Queued fails unless q holds want messages: a figure for processes that
// did not queue (or deliver) their message would be a lie.
func Queued(q *queue.Queue, want int) error {
	ids, err := q.IDs()
	if err != nil {
		return err
	}
	if len(ids) != want {
		return fmt.Errorf("%s holds %d messages, want %d: %w", q.Dir(), len(ids), want, errWithheld)
	}
	return nil
}
