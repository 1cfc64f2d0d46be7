package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"yubin/internal/safeio"
)

// dsnLogName is the file in queue_dir that counts notifications per sender.
const dsnLogName = "dsn.log"

// DSNLog counts the delivery status notifications sent to each envelope
// sender over a sliding window, for every process that runs the queue: a
// daemon, sendmail -q runs, and each of them after a restart see the same
// counts.
//
// # The file
//
// queue_dir/dsn.log holds one line per notification, "MILLIS SENDER\n"
// (Unix milliseconds, then the sender as in the envelope), appended under
// flock(LOCK_EX) on the file. It is not fsync'd: it is a rate limit, and a
// crash that loses its last lines lets a few more notifications through,
// nothing worse. A line cut short or unreadable is skipped.
//
// Each process keeps the counts in memory and, under the lock, reads only
// the lines appended since its last look. It counts the lines still inside
// the window only after as many new lines (at least a thousand): when the
// file holds more than twice those, it rewrites the file with the live lines
// (safeio, renamed over the old one); the others find the name on a new file
// after they take the lock, and read that one from its start. So a storm of
// n notifications costs O(n) in all.
type DSNLog struct {
	q      *Queue
	window time.Duration

	mu    sync.Mutex
	f     *os.File
	off   int64                  // how much of f has been read into times
	lines int                    // lines of f read or written
	check int                    // lines at which to look whether to rewrite f
	times map[string][]time.Time // sender → notification times, oldest first
}

// compactMin is the fewest lines a DSN log has before it is rewritten, and
// the fewest between two looks whether to.
const compactMin = 1000

// DSNLog returns the queue's notification counts over window. Nothing is
// read before the first Allow.
func (q *Queue) DSNLog(window time.Duration) *DSNLog {
	return &DSNLog{q: q, window: window}
}

// Allow reports whether one more notification to sender at now keeps it
// within limit notifications in the window before now, and when it does
// records it. On an error with the file it answers true (a notification
// is mail: better one too many than one lost) with the error.
func (l *DSNLog) Allow(sender string, limit int, now time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.lock(); err != nil {
		return true, fmt.Errorf("queue: %s: %w", dsnLogName, err)
	}
	locked := l.f // compact may replace l.f
	defer unix.Flock(int(locked.Fd()), unix.LOCK_UN)
	if err := l.catchUp(now); err != nil {
		return true, fmt.Errorf("queue: %s: %w", dsnLogName, err)
	}
	ts := l.live(sender, now)
	if len(ts) >= limit {
		return false, nil
	}
	line := fmt.Appendf(nil, "%d %s\n", now.UnixMilli(), sender)
	if _, err := l.f.Write(line); err != nil {
		return true, fmt.Errorf("queue: %s: %w", dsnLogName, err)
	}
	l.off += int64(len(line))
	l.lines++
	l.times[sender] = append(ts, now)
	if l.lines >= l.check {
		live := l.liveAll(now)
		if l.lines > 2*live {
			if err := l.compact(); err != nil {
				return true, fmt.Errorf("queue: %s: %w", dsnLogName, err)
			}
		}
		l.check = l.lines + max(live, compactMin)
	}
	return true, nil
}

// Close closes the file.
func (l *DSNLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// lock opens the file when needed and takes its lock; a file that another
// process has replaced meanwhile is dropped for the new one, read afresh.
func (l *DSNLog) lock() error {
	name := l.q.path(dsnLogName)
	for {
		if l.f == nil {
			f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o660)
			if err != nil {
				return err
			}
			f.Chmod(0o660) // past the umask, for mail_owner's group; only the owner may
			l.f, l.off, l.lines, l.check, l.times = f, 0, 0, compactMin, map[string][]time.Time{}
		}
		if err := unix.Flock(int(l.f.Fd()), unix.LOCK_EX); err != nil {
			return err
		}
		gone, err := unlinked(l.f, name)
		if err != nil || !gone {
			if err != nil {
				unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
			}
			return err
		}
		l.f.Close()
		l.f = nil
	}
}

// catchUp reads the lines appended since the last look.
func (l *DSNLog) catchUp(now time.Time) error {
	r := bufio.NewReader(io.NewSectionReader(l.f, l.off, 1<<62))
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // no more, or a line still being written: next time
		}
		if err != nil {
			return err
		}
		l.off += int64(len(line))
		l.lines++
		ms, sender, ok := bytes.Cut(line[:len(line)-1], []byte(" "))
		n, perr := strconv.ParseInt(string(ms), 10, 64)
		if !ok || perr != nil {
			continue
		}
		if t := time.UnixMilli(n); now.Sub(t) < l.window {
			l.times[string(sender)] = append(l.times[string(sender)], t)
		}
	}
}

// live drops sender's times that have left the window and returns the rest.
func (l *DSNLog) live(sender string, now time.Time) []time.Time {
	ts := l.times[sender]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= l.window {
		i++
	}
	if i == len(ts) {
		delete(l.times, sender)
		return nil
	}
	ts = ts[i:]
	l.times[sender] = ts
	return ts
}

// liveAll prunes every sender and returns how many times are left.
func (l *DSNLog) liveAll(now time.Time) int {
	n := 0
	for s := range l.times {
		n += len(l.live(s, now))
	}
	return n
}

// compact replaces the file with the live lines; the caller holds the lock
// of the old file, which the others find unlinked when they get it.
func (l *DSNLog) compact() error {
	var buf bytes.Buffer
	lines := 0
	for s, ts := range l.times {
		for _, t := range ts {
			fmt.Fprintf(&buf, "%d %s\n", t.UnixMilli(), s)
			lines++
		}
	}
	name := l.q.path(dsnLogName)
	err := safeio.WriteFile(name, 0o660, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err })
	if err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return err // the next lock finds the old file unlinked
	}
	l.f.Close()
	l.f, l.off, l.lines = f, int64(buf.Len()), lines
	return nil
}
