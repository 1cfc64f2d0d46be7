// Command enqueue measures how fast mail gets into yubin's queue, and prints
// each figure beside the limit it cannot beat, all in one run:
//
//	disk      4 KB files created, written and fsync'd; and the same written in
//	          tmp/, renamed into new/ and new/ fsync'd (reference.sh's two disk
//	          probes): the fsync limit of the filesystem under -dir
//	spawn     N × /bin/true, one at a time and -par at a time: the floor of
//	          any program that mail enters through, started the way we start
//	          sendmail below
//	queue     queue.Create + 4 KB + Commit in this process, against the
//	          rename+fsync(dir) limit (the same fsyncs a commit does)
//	sendmail  N × `sendmail -i rcpt@bench.test < 4096-byte message`, against
//	          the spawn floor; the queue is counted afterwards
//	postfix   our sequential sendmail figure over Postfix's (-postfix)
//
// This is a shared 2-core machine: absolute figures drift by ±30 % from run to
// run, so read the ratios, which compare figures taken minutes apart. The aim
// for sendmail is at least half the spawn floor, i.e. at least 4× Postfix's
// sendmail measured in the same sitting by
//
//	bash ../shared/bench/reference.sh sendmail   # as root; prints "par=1 enqueue"
//
// Run from the repository root: `make bench`, or `go run ./bench/enqueue -n 2000`.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"yubin/internal/queue"
)

// Postfix 3.7's sendmail on this machine, from ../shared/bench/README.md
// (2026-11-28): the reference when -postfix is not given.
const postfixLow, postfixHigh = 18, 29

const rcpt = "rcpt@bench.test"

func main() {
	n := flag.Int("n", 1000, "invocations, messages and files per figure")
	par := flag.Int("par", 4, "workers in the parallel figures")
	base := flag.String("dir", "/var/tmp", "where the temp dir goes: a real disk, not tmpfs")
	sendmail := flag.String("sendmail", "bin/sendmail", "the sendmail binary to measure")
	postfix := flag.Float64("postfix", 0, "Postfix sendmail proc/s, reference.sh's par=1 figure from the same sitting")
	flag.Parse()
	if err := run(*n, *par, *base, *sendmail, *postfix); err != nil {
		fmt.Fprintln(os.Stderr, "enqueue:", err)
		os.Exit(1)
	}
}

func run(n, par int, base, sendmail string, postfix float64) error {
	if n < par || par < 1 {
		return errors.New("need -n ≥ -par ≥ 1")
	}
	sendmail, err := filepath.Abs(sendmail)
	if err != nil {
		return err
	}
	if _, err := os.Stat(sendmail); err != nil {
		return fmt.Errorf("%w (make build, or -sendmail PATH)", err)
	}
	dir, err := os.MkdirTemp(base, "yubin-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	msg := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(msg, message(4096), 0o644); err != nil {
		return err
	}

	fmt.Printf("# %s, %d cpu, load %s, n=%d, par=%d, dir %s (%s)\n# sendmail %s (%s)\n",
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), load(), n, par, dir, fsType(dir), sendmail, linkage(sendmail))
	var disk, spawn [2]float64 // [0] sequential, [1] parallel
	for i, p := range []int{1, par} {
		r, err := diskRate(filepath.Join(dir, "disk"), n, p, false)
		if err != nil {
			return err
		}
		line(fmt.Sprintf("disk: 4 KB create+write+fsync, %s", workers(p)), r, "files/s", "", 0)
		if disk[i], err = diskRate(filepath.Join(dir, "disk"), n, p, true); err != nil {
			return err
		}
		line(fmt.Sprintf("disk: + rename + fsync(dir), %s", workers(p)), disk[i], "files/s", "", 0)
	}
	for i, p := range []int{1, par} {
		if spawn[i], err = spawnRate(n, p); err != nil {
			return err
		}
		line(fmt.Sprintf("spawn floor: /bin/true, %s", workers(p)), spawn[i], "proc/s", "", 0)
	}
	q := queue.New(filepath.Join(dir, "pkgqueue"))
	if err := q.Init(-1, -1); err != nil {
		return err
	}
	for i, p := range []int{1, par} {
		r, err := queueRate(q, msg, n, p)
		if err != nil {
			return err
		}
		line(fmt.Sprintf("queue Create+Commit, %s", workers(p)), r, "msg/s", "fsync limit", disk[i])
	}
	var ours [2]float64
	for i, p := range []int{1, par} {
		if ours[i], err = sendmailRate(sendmail, dir, msg, n, p); err != nil {
			return err
		}
		line(fmt.Sprintf("sendmail enqueue, %s", workers(p)), ours[i], "proc/s", "spawn floor", spawn[i])
	}
	comparePostfix(ours[0], postfix)
	return nil
}

// diskRate is reference.sh's fsbench: 4 KB files created, written and
// fsync'd in new/; with rename, written in tmp/, renamed into new/ and new/
// fsync'd.
func diskRate(dir string, n, par int, rename bool) (float64, error) {
	defer os.RemoveAll(dir)
	for _, d := range []string{"tmp", "new"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return 0, err
		}
	}
	newDir, err := os.Open(filepath.Join(dir, "new"))
	if err != nil {
		return 0, err
	}
	defer newDir.Close()
	buf := []byte(strings.Repeat("x", 4096))
	return parallel(n, par, func(w, i int) error {
		name := fmt.Sprintf("%d.%d", w, i)
		path := filepath.Join(dir, "new", name)
		if rename {
			path = filepath.Join(dir, "tmp", name)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil || !rename {
			return err
		}
		if err := os.Rename(path, filepath.Join(dir, "new", name)); err != nil {
			return err
		}
		return newDir.Sync()
	})
}

// spawnRate starts /bin/true as sendmailRate starts sendmail.
func spawnRate(n, par int) (float64, error) {
	return parallel(n, par, func(_, _ int) error {
		return exec.Command("/bin/true").Run()
	})
}

// queueRate commits n messages (the file msg) through the queue package.
func queueRate(q *queue.Queue, msg string, n, par int) (float64, error) {
	body, err := os.ReadFile(msg)
	if err != nil {
		return 0, err
	}
	before, err := q.IDs()
	if err != nil {
		return 0, err
	}
	r, err := parallel(n, par, func(_, _ int) error {
		w, err := q.Create(&queue.Envelope{From: "bench@bench.test", Recipients: []*queue.Recipient{{Addr: rcpt}}})
		if err != nil {
			return err
		}
		w.Write(body)
		return w.Commit()
	})
	if err != nil {
		return 0, err
	}
	return r, checkQueued(q, len(before)+n/par*par)
}

// sendmailRate runs `sendmail -i rcpt < msg` n times on a fresh queue in dir
// and checks that each run queued one message.
func sendmailRate(sendmail, dir, msg string, n, par int) (float64, error) {
	q := queue.New(filepath.Join(dir, fmt.Sprintf("queue-%d", par)))
	conf := filepath.Join(dir, fmt.Sprintf("yubin-%d.conf", par))
	text := fmt.Sprintf("queue_dir = %s\nhostname = bench.test\n", q.Dir())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return 0, err
	}
	if err := q.Init(-1, -1); err != nil {
		return 0, err
	}
	env := append(os.Environ(), "YUBIN_CONF="+conf)
	send := func(_, _ int) error {
		in, err := os.Open(msg)
		if err != nil {
			return err
		}
		defer in.Close()
		cmd := exec.Command(sendmail, "-i", rcpt)
		cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = in, os.Stdout, os.Stderr, env
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s -i %s: %w", sendmail, rcpt, err)
		}
		return nil
	}
	// Warm the page cache with the binary, so the first runs are not an outlier.
	if _, err := parallel(par, par, send); err != nil {
		return 0, err
	}
	r, err := parallel(n, par, send)
	if err != nil {
		return 0, err
	}
	return r, checkQueued(q, par+n/par*par)
}

// checkQueued fails unless the queue holds want messages: a figure for
// processes that did not queue their message would be a lie.
func checkQueued(q *queue.Queue, want int) error {
	ids, err := q.IDs()
	if err != nil {
		return err
	}
	if len(ids) != want {
		return fmt.Errorf("%s holds %d messages, want %d: figure withheld", q.Dir(), len(ids), want)
	}
	return nil
}

// comparePostfix prints our sequential sendmail figure over Postfix's: the
// same-sitting one if given, else the README's with how to get one.
func comparePostfix(ours, postfix float64) {
	if postfix > 0 {
		fmt.Printf("%-44s %6.0f proc/s   postfix (same sitting) %.0f/s  %.1f× postfix (aim ≥ 4×)\n",
			"sendmail enqueue vs Postfix, sequential", ours, postfix, ours/postfix)
		return
	}
	fmt.Printf("%-44s %6.0f proc/s   postfix 3.7 %d–%d/s (README)  %.0f–%.0f× postfix (aim ≥ 4×)\n",
		"sendmail enqueue vs Postfix, sequential", ours, postfixLow, postfixHigh, ours/postfixHigh, ours/postfixLow)
	fmt.Println("# same-sitting figure: sudo bash ../shared/bench/reference.sh sendmail, then -postfix <its par=1 enqueue proc/s>")
}

// parallel runs f(worker, i) for i < n/par in each of par goroutines and
// returns the calls per second, or the first error.
func parallel(n, par int, f func(w, i int) error) (float64, error) {
	var wg sync.WaitGroup
	errs := make([]error, par)
	start := time.Now()
	for w := range par {
		wg.Go(func() {
			for i := range n / par {
				if errs[w] = f(w, i); errs[w] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(n/par*par) / elapsed.Seconds(), nil
}

// line prints one figure, and its limit and the ratio when there is one:
// "sendmail enqueue, 4 parallel   812 proc/s  spawn floor 950/s   85% of floor".
func line(what string, rate float64, unit, limitName string, limit float64) {
	s := fmt.Sprintf("%-44s %6.0f %-7s", what, rate, unit)
	if limitName != "" {
		of := limitName[strings.LastIndexByte(limitName, ' ')+1:]
		s += fmt.Sprintf("  %s %.0f/s  %3.0f%% of %s", limitName, limit, 100*rate/limit, of)
	}
	fmt.Println(strings.TrimRight(s, " "))
}

func workers(p int) string {
	if p == 1 {
		return "sequential"
	}
	return fmt.Sprintf("%d parallel", p)
}

// message is a plain message of exactly size bytes, like reference.sh's.
func message(size int) []byte {
	var b strings.Builder
	b.WriteString("From: Bench <bench@bench.test>\nTo: " + rcpt + "\nSubject: bench message\n\n")
	for b.Len() < size {
		b.WriteString(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 2) + "abcd\n")
	}
	s := b.String()[:size-1] + "\n"
	return []byte(s)
}

// fsType names the filesystem under dir, so that a tmpfs (no real fsync)
// shows in the output.
func fsType(dir string) string {
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

// load is the 1-minute load average: other work on the machine shows in
// every figure, less in the ratios.
func load() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// linkage says whether the binary needs the dynamic loader, whose start-up
// is part of every sendmail invocation.
func linkage(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return "not an ELF binary"
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "dynamically linked"
		}
	}
	return "static"
}
