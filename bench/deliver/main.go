// Command deliver measures how fast local mail gets into Maildirs, and prints
// each figure beside the limit it cannot beat, all in one run:
//
//	fsync     4 KB files created, written and fsync'd: the raw fsync rate of
//	          the filesystem under -dir
//	maildir   the same written in tmp/, linked into new/, new/ fsync'd and the
//	          tmp/ name removed: a Maildir delivery's own disk work, into one
//	          Maildir and spread over 100
//	spawn     /bin/true, as deliver is started below: the floor of any
//	          program started per message
//	mailbox   mailbox.Deliverer.Deliver of one 4 KB message (read once) in this
//	          process, into one Maildir and into 100
//	deliver   `bin/deliver USER < 4096-byte message`, into one Maildir and
//	          into 100 (users of a users_file); the new/ files are counted
//	          afterwards, and a wrong count withholds the figure
//
// Each is taken one at a time and -par at a time. This is a shared 2-core
// machine whose disk drifts by ±30 % and more from one minute to the next,
// so the mailbox and deliver figures of each layout and parallelism are
// framed by two maildir probes of the same, and compared with their mean.
//
// Run from the repository root: `go run ./bench/deliver` (after make build).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"yubin/internal/auth"
	"yubin/internal/mailbox"
)

// mailboxes is the number of Maildirs of the spread figures.
const mailboxes = 100

type options struct {
	n, par        int
	base, deliver string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "deliveries (and files) per figure")
	flag.IntVar(&o.par, "par", 4, "workers in the parallel figures")
	flag.StringVar(&o.base, "dir", "/var/tmp", "where the temp dir goes: a real disk, not tmpfs")
	flag.StringVar(&o.deliver, "deliver", "bin/deliver", "the deliver binary to measure")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/deliver:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.n < o.par || o.par < 1 {
		return errors.New("need -n ≥ -par ≥ 1")
	}
	deliver, err := filepath.Abs(o.deliver)
	if err != nil {
		return err
	}
	if _, err := os.Stat(deliver); err != nil {
		return fmt.Errorf("%w (make build, or -deliver PATH)", err)
	}
	dir, err := os.MkdirTemp(o.base, "yubin-bench-deliver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	msg := message(4096)
	msgFile := filepath.Join(dir, "msg.eml")
	if err := os.WriteFile(msgFile, msg, 0o644); err != nil {
		return err
	}
	var fs unix.Statfs_t
	unix.Statfs(dir, &fs)
	kind := "a disk"
	if fs.Type == unix.TMPFS_MAGIC {
		kind = "TMPFS: fsync is free, the figures say nothing of a disk"
	}
	fmt.Printf("# %s, %d cpu, n=%d, par=%d, dir %s (%s)\n# deliver %s\n",
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), o.n, o.par, dir, kind, deliver)

	pars := []int{1, o.par}
	for _, p := range pars {
		r, err := diskRate(filepath.Join(dir, "fsync"), o.n, p, 1, false)
		if err != nil {
			return err
		}
		show(fmt.Sprintf("fsync: 4 KB create+write+fsync, %s", workers(p)), r, "files/s", "", 0)
	}
	for _, p := range pars {
		r, err := parallel(o.n, p, func(int) error { return exec.Command("/bin/true").Run() })
		if err != nil {
			return err
		}
		show(fmt.Sprintf("spawn floor: /bin/true, %s", workers(p)), r, "proc/s", "", 0)
	}
	// The disk drifts from one minute to the next: each pair of figures is
	// framed by the Maildir probe of its layout, and compared with their mean.
	for _, dirs := range []int{1, mailboxes} {
		for _, p := range pars {
			before, err := diskRate(filepath.Join(dir, "maildir"), o.n, p, dirs, true)
			if err != nil {
				return err
			}
			inproc, err := mailboxRate(filepath.Join(dir, fmt.Sprintf("inproc-%d-%d", dirs, p)), msg, o.n, p, dirs)
			if err != nil {
				return err
			}
			procs, err := deliverRate(deliver, filepath.Join(dir, fmt.Sprintf("proc-%d-%d", dirs, p)), msgFile, o.n, p, dirs)
			if err != nil {
				return err
			}
			after, err := diskRate(filepath.Join(dir, "maildir"), o.n, p, dirs, true)
			if err != nil {
				return err
			}
			limit := (before + after) / 2
			fmt.Printf("%-56s %6.0f %s  mean of %.0f before and %.0f after\n",
				fmt.Sprintf("maildir: + link + fsync(new/), %s, %s", maildirs(dirs), workers(p)), limit, "files/s", before, after)
			show(fmt.Sprintf("mailbox.Deliver, %s, %s", maildirs(dirs), workers(p)), inproc, "msg/s", "maildir limit", limit)
			show(fmt.Sprintf("deliver, %s, %s", maildirs(dirs), workers(p)), procs, "proc/s", "maildir limit", limit)
		}
	}
	return nil
}

// diskRate writes n 4 KB files with fsync; with maildir, as a Maildir
// delivery does (tmp/, fsync, link into new/, fsync new/, unlink tmp/), into
// dirs directories in turn.
func diskRate(base string, n, par, dirs int, maildir bool) (float64, error) {
	defer os.RemoveAll(base)
	newDirs := make([]*os.File, dirs)
	for d := range dirs {
		for _, sub := range []string{"tmp", "new"} {
			if err := os.MkdirAll(filepath.Join(base, fmt.Sprint(d), sub), 0o700); err != nil {
				return 0, err
			}
		}
		f, err := os.Open(filepath.Join(base, fmt.Sprint(d), "new"))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		newDirs[d] = f
	}
	buf := make([]byte, 4096)
	return parallel(n, par, func(i int) error {
		d := i % dirs
		name := fmt.Sprintf("f%d", i)
		path := filepath.Join(base, fmt.Sprint(d), "new", name)
		if maildir {
			path = filepath.Join(base, fmt.Sprint(d), "tmp", name)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
		if err != nil || !maildir {
			return err
		}
		if err := os.Link(path, filepath.Join(base, fmt.Sprint(d), "new", name)); err != nil {
			return err
		}
		if err := newDirs[d].Sync(); err != nil {
			return err
		}
		return os.Remove(path)
	})
}

// benchUsers are u000…u099, all the running user, without a home.
type benchUsers struct{}

func (benchUsers) Lookup(name string) (*auth.User, error) {
	return &auth.User{Name: name, UID: os.Geteuid(), GID: os.Getegid(), Virtual: true}, nil
}

func (benchUsers) Virtual() bool { return true }

func user(i, dirs int) string { return fmt.Sprintf("u%03d", i%dirs) }

// mailboxRate delivers msg n times through the mailbox package into dirs
// Maildirs under base, reading the message once.
func mailboxRate(base string, msg []byte, n, par, dirs int) (float64, error) {
	m, err := mailbox.ReadMessage(strings.NewReader(string(msg)), 0)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	m.Sender = "bench@bench.test"
	d := mailbox.New(mailbox.Options{MailDir: filepath.Join(base, "%u"), Hostname: "bench.test", Users: benchUsers{}})
	r, err := parallel(n, par, func(i int) error {
		_, err := d.Deliver(m, user(i, dirs))
		return err
	})
	if err != nil {
		return 0, err
	}
	return r, count(base, n/par*par)
}

// deliverRate runs `deliver USER < msg` n times into dirs Maildirs under
// base, the users being those of a users_file.
func deliverRate(deliver, base, msg string, n, par, dirs int) (float64, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return 0, err
	}
	var users strings.Builder
	for i := range dirs {
		fmt.Fprintf(&users, "%s:*:%d:%d:\n", user(i, dirs), os.Geteuid(), os.Getegid())
	}
	usersFile := filepath.Join(base, "users")
	conf := filepath.Join(base, "yubin.conf")
	text := fmt.Sprintf("hostname = bench.test\nusers_file = %s\nmail_dir = %s\n", usersFile, filepath.Join(base, "mail", "%u"))
	if err := os.WriteFile(usersFile, []byte(users.String()), 0o644); err != nil {
		return 0, err
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return 0, err
	}
	env := append(os.Environ(), "YUBIN_CONF="+conf)
	send := func(i int) error {
		in, err := os.Open(msg)
		if err != nil {
			return err
		}
		defer in.Close()
		cmd := exec.Command(deliver, "-f", "bench@bench.test", user(i, dirs))
		cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = in, os.Stdout, os.Stderr, env
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", deliver, user(i, dirs), err)
		}
		return nil
	}
	// Warm the page cache with the binary, and create the Maildirs, so
	// that the figure is of deliveries alone.
	if _, err := parallel(dirs, min(par, dirs), send); err != nil {
		return 0, err
	}
	r, err := parallel(n, par, send)
	if err != nil {
		return 0, err
	}
	return r, count(filepath.Join(base, "mail"), dirs+n/par*par)
}

// count checks that the Maildirs under base hold want messages in new/.
func count(base string, want int) error {
	files, err := filepath.Glob(filepath.Join(base, "*", "new", "*"))
	if err != nil {
		return err
	}
	if len(files) != want {
		return fmt.Errorf("%s: %d messages in new/, want %d: figure withheld", base, len(files), want)
	}
	return nil
}

// parallel runs job(i) for n/par*par values of i in par workers and returns
// the jobs per second.
func parallel(n, par int, job func(i int) error) (float64, error) {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	total := int64(n / par * par)
	start := time.Now()
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total || failed.Load() != nil {
					return
				}
				if err := job(int(i)); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return 0, *err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// show prints a figure, and its share of its limit when there is one.
func show(what string, rate float64, unit, limitName string, limit float64) {
	fmt.Printf("%-56s %6.0f %s", what, rate, unit)
	if limit > 0 {
		fmt.Printf("  %3.0f%% of the %s (%.0f/s)", 100*rate/limit, limitName, limit)
	}
	fmt.Println()
}

func workers(p int) string {
	if p == 1 {
		return "sequential"
	}
	return fmt.Sprintf("%d parallel", p)
}

func maildirs(n int) string {
	if n == 1 {
		return "1 Maildir"
	}
	return fmt.Sprintf("%d Maildirs", n)
}

// message is a plain message of about size bytes.
func message(size int) []byte {
	var b strings.Builder
	b.WriteString("From: bench@bench.test\nTo: rcpt@bench.test\nSubject: bench\n\n")
	for b.Len() < size {
		b.WriteString(strings.Repeat("x", 71) + "\n")
	}
	return []byte(b.String()[:size-1] + "\n")
}
