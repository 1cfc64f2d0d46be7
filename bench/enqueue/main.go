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
//	postfix   our sendmail figures over Postfix's (-postfix, -postfix-par)
//	backlog   with -backlog N: N 4 KB messages queued through the queue
//	          package, then in that queue sendmail enqueue beside the
//	          empty-queue figure, and mailq's listing time and read()
//	          bytes beside the queue's size and mailq on an empty queue
//
// This is a shared 2-core machine: absolute figures drift by ±30 % from run to
// run, so read the ratios, which compare figures taken minutes apart. The aim
// for sendmail is at least half the spawn floor, i.e. at least 4× Postfix's
// sendmail measured in the same sitting by
//
//	bash ../shared/bench/reference.sh sendmail   # as root; prints "par=1 enqueue", "par=4 enqueue"
//
// Run from the repository root: `make bench`, or `go run ./bench/enqueue -n 2000`.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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

// fillWorkers commit the -backlog messages: more fsyncs in flight than -par,
// because the fill is only a means and 100,000 fsync'd commits one at a time
// take minutes.
const fillWorkers = 16

type options struct {
	n, par, backlog     int
	base, sendmail      string
	postfix, postfixPar float64
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "invocations, messages and files per figure")
	flag.IntVar(&o.par, "par", 4, "workers in the parallel figures")
	flag.StringVar(&o.base, "dir", "/var/tmp", "where the temp dir goes: a real disk, not tmpfs")
	flag.StringVar(&o.sendmail, "sendmail", "bin/sendmail", "the sendmail binary to measure; mailq is taken from its directory")
	flag.Float64Var(&o.postfix, "postfix", 0, "Postfix sendmail proc/s, reference.sh's par=1 figure from the same sitting")
	flag.Float64Var(&o.postfixPar, "postfix-par", 0, "Postfix sendmail proc/s, reference.sh's par=4 figure (its PAR = our -par) from the same sitting")
	flag.IntVar(&o.backlog, "backlog", 0, "also measure with this many 4 KB messages waiting; 0 skips (100000 adds about a minute)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "enqueue:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	n, par := o.n, o.par
	if n < par || par < 1 {
		return errors.New("need -n ≥ -par ≥ 1")
	}
	if o.backlog < 0 {
		return errors.New("need -backlog ≥ 0")
	}
	sendmail, err := filepath.Abs(o.sendmail)
	if err != nil {
		return err
	}
	if _, err := os.Stat(sendmail); err != nil {
		return fmt.Errorf("%w (make build, or -sendmail PATH)", err)
	}
	dir, err := os.MkdirTemp(o.base, "yubin-bench-")
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
		q, env, err := benchQueue(dir, fmt.Sprintf("queue-%d", p))
		if err != nil {
			return err
		}
		if ours[i], err = sendmailRate(sendmail, q, env, msg, n, p); err != nil {
			return err
		}
		line(fmt.Sprintf("sendmail enqueue, %s", workers(p)), ours[i], "proc/s", "spawn floor", spawn[i])
	}
	comparePostfix(1, ours[0], o.postfix)
	comparePostfix(par, ours[1], o.postfixPar)
	if o.backlog > 0 {
		return backlogFigures(o, dir, sendmail, msg, ours)
	}
	return nil
}

// backlogFigures fills a fresh queue with o.backlog 4 KB messages and then
// measures in it what must not slow down with the queue's length: sendmail
// enqueue, beside empty (the empty-queue figures of this run), and mailq,
// beside mailq on an empty queue and, for what it read, the queue's size.
func backlogFigures(o options, dir, sendmail, msg string, empty [2]float64) error {
	mailq := filepath.Join(filepath.Dir(sendmail), "mailq")
	_, env, err := benchQueue(dir, "empty")
	if err != nil {
		return err
	}
	const runs = 20
	var wall time.Duration
	var read int64
	for range runs {
		l, err := listQueue(mailq, env, 0)
		if err != nil {
			return err
		}
		wall += l.wall
		read = max(read, l.rchar) // the same in every run, give or take a few bytes
	}
	fmt.Printf("%-44s %6.3f %-7s  mean of %d runs, read() %s\n",
		"mailq, empty queue", wall.Seconds()/runs, "s", runs, size(read))

	q, env, err := benchQueue(dir, "backlog")
	if err != nil {
		return err
	}
	start := time.Now()
	fill, err := queueRate(q, msg, o.backlog, fillWorkers)
	if err != nil {
		return err
	}
	waiting := o.backlog / fillWorkers * fillWorkers // as many as queueRate checked
	fmt.Printf("%-44s %6.0f %-7s  took %s for %d messages\n", "backlog: queue Create+Commit, "+workers(fillWorkers),
		fill, "msg/s", time.Since(start).Round(time.Second), waiting)

	l, err := listQueue(mailq, env, waiting)
	if err != nil {
		return err
	}
	files, err := treeSize(q.Dir())
	if err != nil {
		return err
	}
	fmt.Printf("%-44s %6.3f %-7s  %.0f msg/s, read() %s of %s in queue files (%.0f%%)\n",
		fmt.Sprintf("mailq, %d waiting", waiting), l.wall.Seconds(), "s", float64(waiting)/l.wall.Seconds(),
		size(l.rchar), size(files), 100*float64(l.rchar)/float64(files))

	for i, p := range []int{1, o.par} {
		r, err := sendmailRate(sendmail, q, env, msg, o.n, p)
		if err != nil {
			return err
		}
		line(fmt.Sprintf("sendmail enqueue, %s, %d waiting", workers(p), waiting), r, "proc/s", "empty queue", empty[i])
	}
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

// benchQueue makes a fresh queue dir/name and a config file naming it, and
// returns the queue and the environment that points sendmail and mailq at it.
func benchQueue(dir, name string) (*queue.Queue, []string, error) {
	q := queue.New(filepath.Join(dir, name))
	conf := filepath.Join(dir, name+".conf")
	text := fmt.Sprintf("queue_dir = %s\nhostname = bench.test\n", q.Dir())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, nil, err
	}
	if err := q.Init(-1, -1); err != nil {
		return nil, nil, err
	}
	return q, append(os.Environ(), "YUBIN_CONF="+conf), nil
}

// sendmailRate runs `sendmail -i rcpt < msg` n times into q, which env
// names, and checks that each run queued one message.
func sendmailRate(sendmail string, q *queue.Queue, env []string, msg string, n, par int) (float64, error) {
	before, err := q.IDs()
	if err != nil {
		return 0, err
	}
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
	return r, checkQueued(q, len(before)+par+n/par*par)
}

// listing is one run of mailq.
type listing struct {
	wall  time.Duration
	rchar int64 // bytes its read(2) calls returned
}

// listQueue runs mailq once on the queue that env names and checks that its
// summary line counts want messages.
//
// What mailq read is rchar in /proc/PID/io: the bytes its read(2) calls
// returned, from the page cache or the disk alike (plus a few KB that any run
// reads: config file, execve's look at the ELF header; see mailq on an empty
// queue). The file exists only while the process does and is incomplete
// until it exits, so we wait for the exit with waitid(WEXITED|WNOWAIT): that
// leaves mailq a zombie whose counters are final (those of its exited threads
// are already added to the process's), we read them, and only then does
// cmd.Wait reap it. The parent's own counters and getrusage(RUSAGE_CHILDREN)
// have no rchar; strace would slow the listing it measures.
func listQueue(mailq string, env []string, want int) (listing, error) {
	var out tail
	cmd := exec.Command(mailq)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &out, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return listing{}, err
	}
	var info unix.Siginfo
	var werr error = unix.EINTR
	for werr == unix.EINTR {
		werr = unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
	}
	l := listing{wall: time.Since(start)}
	stats, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/io", cmd.Process.Pid))
	if err := cmd.Wait(); err != nil {
		return l, fmt.Errorf("%s: %w", mailq, err)
	}
	if werr != nil {
		return l, fmt.Errorf("waitid %s: %w", mailq, werr)
	}
	if rerr != nil {
		return l, rerr
	}
	var err error
	if l.rchar, err = rchar(stats); err != nil {
		return l, err
	}
	summary := "Mail queue is empty"
	if want > 0 {
		summary = fmt.Sprintf(" in %d Request", want)
	}
	if !strings.Contains(string(out.b), summary) {
		return l, fmt.Errorf("%s: listing ends %q, want %q: figure withheld", mailq, out.b, summary)
	}
	return l, nil
}

// rchar reads the rchar line of a /proc/PID/io file.
func rchar(stats []byte) (int64, error) {
	for l := range strings.Lines(string(stats)) {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("/proc/PID/io: no rchar (kernel without task I/O accounting?)")
}

// tail keeps the end of what is written to it: mailq's summary line.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 200 {
		t.b = t.b[len(t.b)-200:]
	}
	return len(p), nil
}

// treeSize is the size of the regular files under dir.
func treeSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}

// size is a byte count for people.
func size(b int64) string {
	if b < 1e6 {
		return fmt.Sprintf("%.1f KB", float64(b)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
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

// comparePostfix prints our sendmail figure with p workers over Postfix's
// from the same sitting. Without one, a sequential figure is compared with
// the README's and the line after says how to get one; a parallel one is
// left out.
func comparePostfix(p int, ours, postfix float64) {
	what := "sendmail enqueue vs Postfix, " + workers(p)
	switch {
	case postfix > 0:
		fmt.Printf("%-44s %6.0f proc/s   postfix (same sitting) %.0f/s  %.1f× postfix (aim ≥ 4×)\n",
			what, ours, postfix, ours/postfix)
	case p == 1:
		fmt.Printf("%-44s %6.0f proc/s   postfix 3.7 %d–%d/s (README)  %.0f–%.0f× postfix (aim ≥ 4×)\n",
			what, ours, postfixLow, postfixHigh, ours/postfixHigh, ours/postfixLow)
		fmt.Println("# same-sitting figures: sudo bash ../shared/bench/reference.sh sendmail, then",
			"-postfix <its par=1 enqueue proc/s> -postfix-par <its par=4 enqueue proc/s>")
	}
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
// "sendmail enqueue, 4 parallel   812 proc/s  spawn floor 950/s   85% of spawn floor".
func line(what string, rate float64, unit, limitName string, limit float64) {
	s := fmt.Sprintf("%-44s %6.0f %-7s", what, rate, unit)
	if limitName != "" {
		s += fmt.Sprintf("  %s %.0f/s  %3.0f%% of %s", limitName, limit, 100*rate/limit, limitName)
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
