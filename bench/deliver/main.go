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
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"yubin/bench/internal/figure"
	"yubin/internal/auth"
	"yubin/internal/mailbox"
)

// mailboxes is the number of Maildirs of the spread figures.
const mailboxes = 100

type options struct{ figure.Flags }

func main() {
	var o options
	o.Register(1000, 4, "deliveries (and files) per figure", "workers in the parallel figures",
		"deliver", "the deliver binary to measure")
	figure.Main("bench/deliver", "yubin-bench-deliver-", &o.Flags, func(dir string) error { return run(o, dir) })
}

func run(o options, dir string) error {
	deliver := o.Program
	msg := figure.Message("rcpt@bench.test", 4096)
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
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), o.N, o.Par, dir, kind, deliver)

	pars := []int{1, o.Par}
	for _, p := range pars {
		r, err := figure.Disk(filepath.Join(dir, "fsync"), o.N, p, 1, figure.Fsync)
		if err != nil {
			return err
		}
		figure.Share(fmt.Sprintf("fsync: 4 KB create+write+fsync, %s", figure.Workers(p)), r, "files/s", "", 0)
	}
	for _, p := range pars {
		r, err := figure.Spawn(o.N, p)
		if err != nil {
			return err
		}
		figure.Share(fmt.Sprintf("spawn floor: /bin/true, %s", figure.Workers(p)), r, "proc/s", "", 0)
	}
	// The disk drifts from one minute to the next: each pair of figures is
	// framed by the Maildir probe of its layout, and compared with their mean.
	for _, dirs := range []int{1, mailboxes} {
		for _, p := range pars {
			before, err := figure.Disk(filepath.Join(dir, "maildir"), o.N, p, dirs, figure.Link)
			if err != nil {
				return err
			}
			inproc, err := mailboxRate(filepath.Join(dir, fmt.Sprintf("inproc-%d-%d", dirs, p)), msg, o.N, p, dirs)
			if err != nil {
				return err
			}
			procs, err := figure.DeliverRate(deliver, filepath.Join(dir, fmt.Sprintf("proc-%d-%d", dirs, p)), msgFile, o.N, p, dirs)
			if err != nil {
				return err
			}
			after, err := figure.Disk(filepath.Join(dir, "maildir"), o.N, p, dirs, figure.Link)
			if err != nil {
				return err
			}
			limit := (before + after) / 2
			fmt.Printf("%-56s %6.0f %s  mean of %.0f before and %.0f after\n",
				fmt.Sprintf("maildir: + link + fsync(new/), %s, %s", maildirs(dirs), figure.Workers(p)), limit, "files/s", before, after)
			figure.Share(fmt.Sprintf("mailbox.Deliver, %s, %s", maildirs(dirs), figure.Workers(p)), inproc, "msg/s", "maildir limit", limit)
			figure.Share(fmt.Sprintf("deliver, %s, %s", maildirs(dirs), figure.Workers(p)), procs, "proc/s", "maildir limit", limit)
		}
	}
	return nil
}

// benchUsers are u000…u099, all the running user, without a home.
type benchUsers struct{}

func (benchUsers) Lookup(name string) (*auth.User, error) {
	return &auth.User{Name: name, UID: os.Geteuid(), GID: os.Getegid(), Virtual: true}, nil
}

func (benchUsers) Virtual() bool { return true }

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
	r, err := figure.Parallel(n, par, func(_, i int) error {
		_, err := d.Deliver(m, figure.User(i, dirs))
		return err
	})
	if err != nil {
		return 0, err
	}
	return r, figure.Count(base, n/par*par)
}

func maildirs(n int) string {
	if n == 1 {
		return "1 Maildir"
	}
	return fmt.Sprintf("%d Maildirs", n)
}
