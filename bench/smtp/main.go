// Command smtp measures how fast smtpd accepts mail from many sessions at
// once, driven by Postfix's smtp-source (the Debian package postfix ships
// it; its daemon stays off: smtpd is the server under test), and prints
// the figure beside its limits, in one run:
//
//	disk     4 KB written in tmp/, fsync'd, renamed into new/ and new/
//	         fsync'd, from -s goroutines: the fsync limit of a queue commit
//	         on the filesystem under -dir
//	smtpd    smtp-source -s S -m M -l L to bench@bench.test (an alias) on
//	         127.0.0.1: messages accepted per second (the queue is counted
//	         afterwards; a wrong count withholds the figure), CPU ms per
//	         message of smtpd alone and of the whole machine (smtp-source
//	         included, as ../shared/bench/reference.sh counts it), and disk
//	         flushes and write I/Os per message (/proc/diskstats, as
//	         reference.sh's snap/stats read them)
//	postfix  smtpd's figure over Postfix's (-postfix, from
//	         `bash ../shared/bench/reference.sh smtp` in the same sitting;
//	         without it, the 267–316 msg/s of issue 5)
//
// With -e2e smtpd starts its queue runner, as installed (woken by each
// queued message), and bench@bench.test is a virtual user: the
// figure is then end to end, smtp-source's first connection to the last
// file in the user's Maildir/new, the work of reference.sh's "end-to-end
// in Maildir/new" line (Postfix: smtpd → cleanup → qmgr → local), with CPU
// and flushes of smtpd and the runner together.
//
// Aims: accept (issue 5) at least 2× Postfix, and fewer than one disk flush
// per message; end to end (issue 6) at least 2× Postfix. Run from the
// repository root after `make build`: `go run ./bench/smtp`, `go run
// ./bench/smtp -e2e`, or `go run ./bench/smtp -m 10000`.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"yubin/internal/queue"
)

// Postfix 3.7 on this machine, smtp-source -s 20 -m 5000 -l 4096: accepted
// (issue 5) and delivered into Maildir/new (issue 6).
const (
	postfixLow, postfixHigh       = 267, 316
	postfixE2ELow, postfixE2EHigh = 204, 241
)

func main() {
	sessions := flag.Int("s", 20, "smtp-source sessions at once")
	msgs := flag.Int("m", 5000, "messages")
	size := flag.Int("l", 4096, "message size in bytes")
	base := flag.String("dir", "/var/tmp", "base of the temp dir (a real disk)")
	mailBase := flag.String("mail", "/home", "base of the -e2e mailboxes' temp dir (same disk as -dir)")
	smtpd := flag.String("smtpd", "bin/smtpd", "the smtpd binary")
	e2e := flag.Bool("e2e", false, "end to end: smtpd's runner delivers into a Maildir as smtpd queues")
	source := flag.String("smtp-source", "/usr/sbin/smtp-source", "Postfix's smtp-source")
	postfix := flag.Float64("postfix", 0, "Postfix's msg/s from reference.sh smtp in the same sitting")
	flag.Parse()
	if err := run(*sessions, *msgs, *size, *base, *mailBase, *smtpd, *e2e, *source, *postfix); err != nil {
		fmt.Fprintln(os.Stderr, "bench/smtp:", err)
		os.Exit(1)
	}
}

// run measures smtpd, and with e2e the whole way into a Maildir.
func run(sessions, msgs, size int, base, mailBase, smtpd string, e2e bool, source string, postfix float64) error {
	if _, err := os.Stat(source); err != nil {
		return fmt.Errorf("%v (apt-get install postfix, keeping its daemon off)", err)
	}
	dir, err := os.MkdirTemp(base, "yubin-bench-smtp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dev := diskOf(dir)
	fmt.Printf("smtp-source -s %d -m %d -l %d, %s on %s (flushes counted on %s)\n", sessions, msgs, size, filepath.Base(smtpd), dir, dev)

	// The disk: what a queue commit costs, at the same parallelism.
	limit, err := commitProbe(filepath.Join(dir, "probe"), 1000, sessions)
	if err != nil {
		return err
	}
	fmt.Printf("  %-44s %6.0f /s\n", fmt.Sprintf("disk: write+fsync+rename+fsync(dir), par %d", sessions), limit)

	// smtpd on a loopback port, its queue in dir.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	owner := os.Getenv("USER")
	if os.Geteuid() == 0 || owner == "" {
		owner = "root"
	}
	qdir := filepath.Join(dir, "queue")
	conf := filepath.Join(dir, "yubin.conf")
	lines := []string{"hostname = bench.test", "queue_dir = " + qdir, "aliases = " + filepath.Join(dir, "aliases"),
		"smtp_listen = " + addr, "submission_listen =", "mail_owner = " + owner}
	aliases := "bench: root\n"
	// The mailboxes live apart from the queue, as /home and /var/spool do
	// (and Postfix's in reference.sh): ext4 puts a new file's inode near
	// its directory's, and one group shared with the queue's churn makes
	// every Maildir create step over the queue's freshly freed inodes.
	mail, err := os.MkdirTemp(mailBase, "yubin-bench-mail-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(mail)
	maildir := filepath.Join(mail, "bench", "new")
	if e2e {
		aliases = ""
		users := filepath.Join(dir, "users")
		os.WriteFile(users, []byte(fmt.Sprintf("bench:*:%d:%d:\n", os.Geteuid(), os.Getegid())), 0o644)
		lines = append(lines, "users_file = "+users, "mail_dir = "+filepath.Join(mail, "%u"))
	}
	os.WriteFile(filepath.Join(dir, "aliases"), []byte(aliases), 0o644)
	os.WriteFile(conf, []byte(strings.Join(append(lines, ""), "\n")), 0o644)
	if err := queue.New(qdir).Init(-1, -1); err != nil {
		return err
	}
	cmd := exec.Command(smtpd, "-C", conf, "--no-runner")
	if e2e {
		cmd = exec.Command(smtpd, "-C", conf)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("smtpd does not listen on %s", addr)
		}
	}

	before, cpuBefore, procBefore := diskSnap(dev), machineCPU(), treeCPU(cmd.Process.Pid)
	start := time.Now()
	out, err := exec.Command(source, "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(msgs), "-l", strconv.Itoa(size),
		"-f", "a@bench.test", "-t", "bench@bench.test", addr).CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return fmt.Errorf("smtp-source: %v\n%s", err, out)
	}
	what, done := "smtpd accept", wall
	if e2e {
		what = "end to end into Maildir/new"
		if done, err = delivered(maildir, msgs, start); err != nil {
			return err
		}
	} else {
		ids, err := queue.New(qdir).IDs()
		if err != nil {
			return err
		}
		if len(ids) != msgs {
			return fmt.Errorf("%d messages queued, want %d: no figure", len(ids), msgs)
		}
	}
	after, cpuAfter, procAfter := diskSnap(dev), machineCPU(), treeCPU(cmd.Process.Pid)
	rate := float64(msgs) / done.Seconds()
	hz := 100.0 // USER_HZ: the kernel's clock ticks in /proc
	if e2e {
		fmt.Printf("  %-44s %6.0f msg/s  (%.2f s)\n", "smtpd accept (smtp-source's wall time)", float64(msgs)/wall.Seconds(), wall.Seconds())
	}
	fmt.Printf("  %-44s %6.0f msg/s  (%.2f s)\n", what, rate, done.Seconds())
	progs := filepath.Base(smtpd)
	if e2e {
		progs += " + runner"
	}
	fmt.Printf("  %-44s %6.2f ms/msg  (machine-wide: %.2f ms/msg)\n", progs+" CPU",
		1000*float64(procAfter-procBefore)/hz/float64(msgs), 1000*float64(cpuAfter-cpuBefore)/hz/float64(msgs))
	fmt.Printf("  %-44s %6.2f /msg   (write I/Os %.1f /msg; aim < 1)\n", "disk flushes",
		float64(after[0]-before[0])/float64(msgs), float64(after[1]-before[1])/float64(msgs))
	fmt.Printf("  %-44s %6.0f%%   (a message is one commit)\n", what+" vs commit limit", 100*rate/limit)
	if postfix > 0 {
		fmt.Printf("  %-44s %6.2f×   (Postfix %.0f msg/s, same sitting; aim 2×)\n", what+" vs Postfix", rate/postfix, postfix)
	} else if e2e {
		fmt.Printf("  %-44s %.1f–%.1f×  (Postfix 3.7 %d–%d msg/s end to end, issue 6; aim 2×)\n", what+" vs Postfix",
			rate/postfixE2EHigh, rate/postfixE2ELow, postfixE2ELow, postfixE2EHigh)
	} else {
		fmt.Printf("  %-44s %.1f–%.1f×  (Postfix 3.7 %d–%d msg/s, issue 5; aim 2×)\n", "smtpd vs Postfix",
			rate/postfixHigh, rate/postfixLow, postfixLow, postfixHigh)
	}
	return nil
}

// commitProbe writes n 4 KB files from par goroutines as a queue commit
// does (tmp/, fsync, rename into new/, fsync new/) and returns files/s.
func commitProbe(dir string, n, par int) (float64, error) {
	for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "new")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return 0, err
		}
	}
	buf := make([]byte, 4096)
	var wg sync.WaitGroup
	errs := make(chan error, par)
	start := time.Now()
	for w := range par {
		wg.Go(func() {
			nd, err := os.Open(filepath.Join(dir, "new"))
			if err != nil {
				errs <- err
				return
			}
			defer nd.Close()
			for i := range n / par {
				name := fmt.Sprintf("%d.%d", w, i)
				tmp := filepath.Join(dir, "tmp", name)
				f, err := os.Create(tmp)
				if err == nil {
					_, err = f.Write(buf)
				}
				if err == nil {
					err = f.Sync()
				}
				if f != nil {
					f.Close()
				}
				if err == nil {
					err = os.Rename(tmp, filepath.Join(dir, "new", name))
				}
				if err == nil {
					err = nd.Sync()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(n/par*par) / time.Since(start).Seconds(), nil
}

// diskOf names the whole disk under dir, as reference.sh finds it
// (findmnt, then lsblk's parent), whose flushes /proc/diskstats counts.
func diskOf(dir string) string {
	src, _ := exec.Command("findmnt", "-no", "SOURCE", "-T", dir).Output()
	s := strings.TrimSpace(string(src))
	if p, _ := exec.Command("lsblk", "-no", "pkname", s).Output(); strings.TrimSpace(string(p)) != "" {
		return strings.TrimSpace(string(p))
	}
	return filepath.Base(s)
}

// diskSnap returns dev's flushes completed and writes completed (fields 19
// and 8 of its /proc/diskstats line, as reference.sh's snap reads them).
func diskSnap(dev string) [2]int64 {
	var out [2]int64
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 19 && fs[2] == dev {
			out[0], _ = strconv.ParseInt(fs[18], 10, 64)
			out[1], _ = strconv.ParseInt(fs[7], 10, 64)
		}
	}
	return out
}

// machineCPU is the busy jiffies of all cores (user, nice, system, irq,
// softirq), as reference.sh counts them.
func machineCPU() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line)
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(fs) {
			v, _ := strconv.ParseInt(fs[i], 10, 64)
			sum += v
		}
	}
	return sum
}

// delivered waits until dir holds want files and returns the time since
// start; it gives up after a minute without a new file.
func delivered(dir string, want int, start time.Time) (time.Duration, error) {
	last, seen := time.Now(), 0
	for {
		names, _ := os.ReadDir(dir)
		if len(names) >= want {
			return time.Since(start), nil
		}
		if len(names) > seen {
			last, seen = time.Now(), len(names)
		}
		if time.Since(last) > time.Minute {
			return 0, fmt.Errorf("%d of %d messages in %s after a minute without progress: no figure", seen, want, dir)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// treeCPU is the user and system jiffies of a process and its children
// (smtpd and its runner).
func treeCPU(pid int) int64 {
	sum := procCPU(pid)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(b)) {
		if child, err := strconv.Atoi(f); err == nil {
			sum += procCPU(child)
		}
	}
	return sum
}

// procCPU is a process's user and system jiffies.
func procCPU(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(fs[11], 10, 64)
	k, _ := strconv.ParseInt(fs[12], 10, 64)
	return u + k
}
