// Package queue is yubin's durable mail queue: the one place where accepted mail
// waits until every recipient is delivered or bounced. sendmail, smtpd, the runner
// and mailq share it through the filesystem; no daemon stands in between.
//
// # Layout
//
//	queue_dir/
//	  tmp/ID      a message being written; never read by anyone but its writer
//	  msg/ID      a committed message: envelope line, then the message (immutable)
//	  state/ID    per-recipient delivery log of msg/ID (append-only)
//	  wake        unix datagram socket of a running runner (see Wake)
//	  wake.lock   flock'd by the runner daemon that listens on wake
//	  dsn.log     notifications sent per sender in the last hour (see DSNLog)
//
// # Message files
//
// msg/ID holds one line of JSON, the Envelope (sender, recipients with their DSN
// parameters, arrival time, client, HELO, protocol, submitting user), then the
// message exactly as accepted, header and body, with LF line endings. The file
// never changes after it is committed; its size minus the envelope line is the
// message size, so listing the queue reads envelope lines only, never bodies.
//
// # Commit (the guarantee behind "250" and sendmail's exit 0)
//
// A writer creates tmp/ID (O_EXCL, mode 0640), writes the envelope and the
// message, fsyncs the file, renames it to msg/ID without replacing anything
// (renameat2 RENAME_NOREPLACE, or link+unlink where that is missing) and fsyncs
// msg/. Only then is the message accepted. A crash before the rename leaves a
// file in tmp/ that nobody lists and Clean removes; after the directory fsync the
// message survives power loss. Nothing half-written is ever in msg/.
//
// # Delivery state
//
// state/ID is a log of JSON lines, one per delivery attempt of one recipient:
// {"rcpt":N,"state":"delivered"|"deferred"|"failed","at":…,"reply":…,"next":…}.
// Lines noted during an attempt (Message.Note) are appended and fsync'd
// together (and state/ fsync'd when the file is new) at Message.Flush, which
// the runner calls before each SMTP transaction and at the end of an
// attempt; Mark is Note and Flush. A recipient recorded as delivered is
// never delivered again; a crash between a delivery and its record repeats
// the deliveries since the last Flush (at least once, never zero). A last
// line without its newline is a write cut by a crash and is ignored. The
// envelope's recipients read with their state are the envelope line with
// the log applied in order.
//
// A line {"rcpt":-1,"warned":[N,…],"at":…} is not an attempt: it records that
// the delay warning about those recipients (RFC 3464 Action: delayed) was
// queued. It is appended and fsync'd the same way, once the warning is
// committed, so that a warning goes once per recipient across runs and
// restarts (a crash between the two repeats it). Logs from before this kind
// read as they always did; a yubin from before it refuses the line (recipient
// -1) and moves the message to corrupt/ rather than misread it.
//
// A finished message is removed by unlinking msg/ID, fsyncing msg/, then
// unlinking state/ID; a state file without its message is debris for Clean.
// A message without a state log (every recipient done in its first attempt)
// is only unlinked: a crash that undid the unlink would repeat that
// attempt, which the missing log already allows.
//
// # Locking
//
// A process delivering a message holds flock(LOCK_EX) on msg/ID for the whole
// attempt (Lock). Runners skip messages locked by another; readers (List) take
// no lock: the files they read are immutable or append-only.
//
// # Queue IDs
//
// 14 characters of Crockford base32: 7 for the Unix second, 4 for the
// microsecond, 3 random. They sort by arrival, never repeat within a process
// (the clock part is forced to increase) and the rename that commits refuses
// to replace an existing message, so two processes can never share an ID.
//
// # Permissions
//
// Unprivileged users enqueue through sendmail installed setgid mail_owner's
// group: the queue directories are owned by mail_owner with mode 2770 (setgid,
// so every file gets the group), files are 0640. We chose setgid over Postfix's
// world-writable maildrop because a message is then committed straight into the
// one queue (no pickup daemon, nothing to forge in a public directory, mailq
// sees it at once), while the only privilege granted is writing this queue.
package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Directory names inside queue_dir.
const (
	tmpDir   = "tmp"
	msgDir   = "msg"
	stateDir = "state"
	wakeName = "wake"
)

var (
	// ErrNotFound: no message with that ID is in the queue (any more).
	ErrNotFound = errors.New("no such message")
	// ErrLocked: another process is delivering the message.
	ErrLocked = errors.New("message is locked by another process")
	// ErrBadID: the string is not a queue ID.
	ErrBadID = errors.New("not a queue ID")
)

// Queue is a queue directory. Its zero value is not usable; use New.
type Queue struct {
	dir string
}

// New returns the queue in dir. It touches nothing on disk.
func New(dir string) *Queue { return &Queue{dir: dir} }

// Dir is the queue directory.
func (q *Queue) Dir() string { return q.dir }

// Init creates the queue directories that are missing, owned by uid:gid (-1
// keeps the creator's) with mode 2770, as described in the package comment.
// Directories that exist are left as they are.
func (q *Queue) Init(uid, gid int) error {
	for _, d := range []string{q.dir, q.path(tmpDir), q.path(msgDir), q.path(stateDir)} {
		err := os.Mkdir(d, 0o770)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		if uid >= 0 || gid >= 0 {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("queue: %w", err)
			}
		}
		// Chmod after Mkdir: the umask must not take the group's write bit,
		// and Mkdir does not set the setgid bit everywhere.
		if err := os.Chmod(d, 0o770|os.ModeSetgid); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	return nil
}

// Initialized reports whether Init has made the queue's directories (or
// whether they are there but hidden from us: then writing will say so). It
// costs one stat.
func (q *Queue) Initialized() bool {
	_, err := os.Stat(q.path(stateDir)) // Init makes it last
	return !errors.Is(err, os.ErrNotExist)
}

func (q *Queue) path(elem ...string) string {
	return filepath.Join(append([]string{q.dir}, elem...)...)
}
