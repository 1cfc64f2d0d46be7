// Package figure holds what yubin's benchmark programs (bench/enqueue,
// bench/deliver, bench/relay) share: their common flags and temp dir (Main),
// running a job n times from par goroutines and timing it, the limits a figure is printed beside (the
// spawn floor, the disk's fsync probes), the counters behind "flushes and
// CPU per message", a 4 KB test message, and the printers that put a figure
// beside its limit.
//
// The disk probes are those of ../shared/bench/reference.sh (fsbench) in Go,
// and Snap reads what its snap function reads: flushes and write IOs of the
// disk under a directory from /proc/diskstats, busy and total CPU time from
// /proc/stat. Nothing here asserts a timing.
package figure

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Parallel runs job(w, i) for i in [0, n/par*par), from par goroutines w
// taking the next i in turn, and returns the jobs per second, or the first
// error (the others stop at their next job).
func Parallel(n, par int, job func(w, i int) error) (float64, error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	total := int64(n / par * par)
	start := time.Now()
	for w := range par {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total || failed.Load() != nil {
					return
				}
				if err := job(w, int(i)); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return 0, *err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// Spawn is the spawn floor: n runs of /bin/true from os/exec, par at a
// time, as the benchmarks start the programs they measure. No program
// started per message can beat it.
func Spawn(n, par int) (float64, error) {
	return Parallel(n, par, func(_, _ int) error { return exec.Command("/bin/true").Run() })
}

// Line prints one figure, and its limit and the ratio when there is one:
// "sendmail enqueue, 4 parallel   812 proc/s  spawn floor 950/s   85% of spawn floor".
func Line(what string, rate float64, unit, limitName string, limit float64) {
	s := fmt.Sprintf("%-44s %6.0f %-7s", what, rate, unit)
	if limitName != "" {
		s += fmt.Sprintf("  %s %.0f/s  %3.0f%% of %s", limitName, limit, 100*rate/limit, limitName)
	}
	fmt.Println(strings.TrimRight(s, " "))
}

// Share prints a figure in a wider column, and its share of its limit when
// there is one: "deliver, 1 Maildir, sequential   114 proc/s   21% of the
// maildir limit (556/s)".
func Share(what string, rate float64, unit, limitName string, limit float64) {
	fmt.Printf("%-56s %6.0f %s", what, rate, unit)
	if limit > 0 {
		fmt.Printf("  %3.0f%% of the %s (%.0f/s)", 100*rate/limit, limitName, limit)
	}
	fmt.Println()
}

// Workers names a parallelism: "sequential", "4 parallel".
func Workers(p int) string {
	if p == 1 {
		return "sequential"
	}
	return fmt.Sprintf("%d parallel", p)
}

// Message is a plain message to rcpt of exactly size bytes, like
// reference.sh's.
func Message(rcpt string, size int) []byte {
	var b strings.Builder
	b.WriteString("From: Bench <bench@bench.test>\nTo: " + rcpt + "\nSubject: bench message\n\n")
	for b.Len() < size {
		b.WriteString(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 2) + "abcd\n")
	}
	s := b.String()[:size-1] + "\n"
	return []byte(s)
}

// FSType names the filesystem under dir, so that a tmpfs (no real fsync)
// shows in the output.
func FSType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err.Error()
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs: fsync is free, figures are not disk figures"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("fs type %#x", st.Type)
}

// Load is the 1-minute load average: other work on the machine shows in
// every figure, less in the ratios.
func Load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// errWithheld marks a count that does not match: a figure for work that
// was not done would be a lie.
var errWithheld = errors.New("figure withheld")
