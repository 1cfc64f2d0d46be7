package mailq

import (
	"fmt"
	"io"

	"yubin/internal/queue"
)

// Operations on queued mail, by queue ID, as Postfix's postsuper does them:
//
//	hold     the runner leaves the message alone until released (-h)
//	release  take it off hold (-H)
//	delete   remove it undelivered, without a bounce (-d)
//	requeue  make its deferred recipients due now, to be routed afresh (-r)
//
// The ID "ALL" means every message in the queue.

// Op is one of the operations.
type Op string

const (
	Hold    Op = "hold"
	Release Op = "release"
	Delete  Op = "delete"
	Requeue Op = "requeue"
)

// Apply does op to each message named and says on w what it did ("mailq:
// 3FQ...: held"), on errw what it could not. It returns how many messages it
// changed and whether any failed.
func Apply(w, errw io.Writer, q *queue.Queue, op Op, ids []string) (n int, failed bool) {
	if len(ids) == 1 && ids[0] == "ALL" {
		all, err := q.IDs()
		if err != nil {
			fmt.Fprintf(errw, "mailq: %v\n", err)
			return 0, true
		}
		ids = all
	}
	for _, id := range ids {
		var err error
		switch op {
		case Hold:
			err = q.Hold(id)
		case Release:
			err = q.Release(id)
		case Delete:
			err = q.Delete(id)
		case Requeue:
			err = q.Requeue(id)
		default:
			err = fmt.Errorf("unknown operation %q", op)
		}
		if err != nil {
			fmt.Fprintf(errw, "mailq: %s: %v\n", id, err)
			failed = true
			continue
		}
		n++
		fmt.Fprintf(w, "mailq: %s: %s\n", id, done[op])
	}
	return n, failed
}

var done = map[Op]string{Hold: "placed on hold", Release: "released from hold", Delete: "removed", Requeue: "requeued"}
