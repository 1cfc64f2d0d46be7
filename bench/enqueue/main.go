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
	"time"

	"golang.org/x/sys/unix"

	"yubin/bench/internal/figure"
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
	figure.Flags
	backlog             int
	postfix, postfixPar float64
}

func main() {
	var o options
	o.Register(1000, 4, "invocations, messages and files per figure", "workers in the parallel figures",
		"sendmail", "the sendmail binary to measure; mailq is taken from its directory")
	flag.Float64Var(&o.postfix, "postfix", 0, "Postfix sendmail proc/s, reference.sh's par=1 figure from the same sitting")
	flag.Float64Var(&o.postfixPar, "postfix-par", 0, "Postfix sendmail proc/s, reference.sh's par=4 figure (its PAR = our -par) from the same sitting")
	flag.IntVar(&o.backlog, "backlog", 0, "also measure with this many 4 KB messages waiting; 0 skips (100000 adds about a minute)")
	figure.Main("enqueue", "yubin-bench-", &o.Flags, func(dir string) error { return run(o, dir) })
}

func run(o options, dir string) error {
	n, par := o.N, o.Par
	if o.backlog < 0 {
		return errors.New("need -backlog ≥ 0")
	}
	sendmail := o.Program
	msg := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(msg, figure.Message(rcpt, 4096), 0o644); err != nil {
		return err
	}

	fmt.Printf("# %s, %d cpu, load %s, n=%d, par=%d, dir %s (%s)\n# sendmail %s (%s)\n",
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), figure.Load(), n, par, dir, figure.FSType(dir), sendmail, linkage(sendmail))
	var disk, spawn [2]float64 // [0] sequential, [1] parallel
	var err error
	for i, p := range []int{1, par} {
		r, err := figure.Disk(filepath.Join(dir, "disk"), n, p, 1, figure.Fsync)
		if err != nil {
			return err
		}
		figure.Line(fmt.Sprintf("disk: 4 KB create+write+fsync, %s", figure.Workers(p)), r, "files/s", "", 0)
		if disk[i], err = figure.Disk(filepath.Join(dir, "disk"), n, p, 1, figure.Rename); err != nil {
			return err
		}
		figure.Line(fmt.Sprintf("disk: + rename + fsync(dir), %s", figure.Workers(p)), disk[i], "files/s", "", 0)
	}
	for i, p := range []int{1, par} {
		if spawn[i], err = figure.Spawn(n, p); err != nil {
			return err
		}
		figure.Line(fmt.Sprintf("spawn floor: /bin/true, %s", figure.Workers(p)), spawn[i], "proc/s", "", 0)
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
		figure.Line(fmt.Sprintf("queue Create+Commit, %s", figure.Workers(p)), r, "msg/s", "fsync limit", disk[i])
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
		figure.Line(fmt.Sprintf("sendmail enqueue, %s", figure.Workers(p)), ours[i], "proc/s", "spawn floor", spawn[i])
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
	fmt.Printf("%-44s %6.0f %-7s  took %s for %d messages\n", "backlog: queue Create+Commit, "+figure.Workers(fillWorkers),
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

	for i, p := range []int{1, o.Par} {
		r, err := sendmailRate(sendmail, q, env, msg, o.N, p)
		if err != nil {
			return err
		}
		figure.Line(fmt.Sprintf("sendmail enqueue, %s, %d waiting", figure.Workers(p), waiting), r, "proc/s", "empty queue", empty[i])
	}
	return nil
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
	r, err := figure.Parallel(n, par, func(_, _ int) error {
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
	return r, figure.Queued(q, len(before)+n/par*par)
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
	if _, err := figure.Parallel(par, par, send); err != nil {
		return 0, err
	}
	r, err := figure.Parallel(n, par, send)
	if err != nil {
		return 0, err
	}
	return r, figure.Queued(q, len(before)+par+n/par*par)
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

// comparePostfix prints our sendmail figure with p workers over Postfix's
// from the same sitting. Without one, a sequential figure is compared with
// the README's and the line after says how to get one; a parallel one is
// left out.
func comparePostfix(p int, ours, postfix float64) {
	what := "sendmail enqueue vs Postfix, " + figure.Workers(p)
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
