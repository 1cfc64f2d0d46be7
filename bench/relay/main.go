// Command relay measures how fast the queue runner empties a queue, and
// prints each figure beside its limit, all in one run (issue 6):
//
//	relay  -n 4 KB messages to 1–3 recipients at sink.test, queued through
//	       the queue package, then `runner --force` with relay_host
//	       [127.0.0.1]:PORT, Postfix's smtp-sink listening there: msg/s until
//	       the runner exits, the queue checked empty. Beside it the queue's
//	       own disk work for a delivered message (state/ID created and
//	       fsync'd with state/, one line appended and fsync'd per
//	       recipient, msg/ID unlinked and msg/ fsync'd, state/ID unlinked),
//	       probed before and after at queue_concurrency.
//	local  -n messages to one of 100 virtual users each (users_file,
//	       mail_owner the running user), then `runner --force`: msg/s until
//	       it exits with the queue empty and -n files in the Maildirs. Beside
//	       it the disk's Maildir delivery probe (write, fsync, link, fsync
//	       new/) into 100 Maildirs at queue_concurrency in the same run (the
//	       runner writes the Maildirs in-process, internal/mailbox), and
//	       Postfix's end-to-end figure from ../shared/bench/README.md, which
//	       is smtp-source → Maildir: not the same path.
//
// Under each figure: disk flushes, write IOs and CPU ms per message, read
// from /proc/diskstats and /proc/stat as ../shared/bench/reference.sh does
// (machine-wide: other work counts too), and the CPU time of the runner and
// its children alone.
//
// This is a shared 2-core machine: absolute figures drift by ±30 % from run
// to run, so read the ratios. Run from the repository root as root or as
// any user (mail_owner is set to the running user): `make build && go run
// ./bench/relay`.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"yubin/bench/internal/figure"
	"yubin/internal/queue"
)

// Postfix 3.7 end to end on this machine (smtp-source → smtpd → local →
// Maildir), from ../shared/bench/README.md (2026-11-28).
const postfixLow, postfixHigh = 204, 241

// users is the number of virtual users of the local figure.
const users = 100

// fillWorkers commit the messages before a figure: the fill is only a means.
const fillWorkers = 16

type options struct {
	figure.Flags
	sink string
}

func main() {
	var o options
	o.Register(2000, 10, "messages per figure", "queue_concurrency of the runner, and the parallelism of the probes beside it",
		"runner", "the runner binary to measure")
	flag.StringVar(&o.sink, "sink", "/usr/sbin/smtp-sink", "Postfix's smtp-sink; missing: the relay figure is skipped")
	figure.Main("bench/relay", "yubin-bench-relay-", &o.Flags, func(dir string) error { return run(o, dir) })
}

func run(o options, dir string) error {
	runner := o.Program
	me, err := user.Current()
	if err != nil {
		return err
	}
	msg := figure.Message("r@sink.test", 4096)
	fmt.Printf("# %s, %d cpu, load %s, n=%d, queue_concurrency=%d, dir %s (%s)\n# runner %s, mail_owner %s\n",
		time.Now().Format("2006-01-02 15:04"), runtime.NumCPU(), figure.Load(), o.N, o.Par, dir, figure.FSType(dir),
		runner, me.Username)
	b := bench{o: o, dir: dir, runner: runner, owner: me.Username, msg: msg}
	if err := b.relay(); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	if err := b.local(); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

type bench struct {
	o           options
	dir, runner string
	owner       string
	msg         []byte
}

// rcpts is the number of recipients of relayed message i: 1, 2, 3 in turn.
func rcpts(i int) int { return i%3 + 1 }

// relay is figure a: runner → smtp-sink.
func (b *bench) relay() error {
	if _, err := os.Stat(b.o.sink); err != nil {
		fmt.Printf("relay: skipped, no %s (Debian's postfix package has it)\n", b.o.sink)
		return nil
	}
	n, par := b.o.N, b.o.Par
	before, err := doneRate(filepath.Join(b.dir, "probe"), n, par)
	if err != nil {
		return err
	}
	q, err := fill(filepath.Join(b.dir, "relay-queue"), b.msg, n, func(i int) []string {
		var to []string
		for r := range rcpts(i) {
			to = append(to, fmt.Sprintf("r%d-%d@sink.test", i, r))
		}
		return to
	})
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	sinkLog, err := os.Create(filepath.Join(b.dir, "smtp-sink.out"))
	if err != nil {
		return err
	}
	defer sinkLog.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-c", addr, "256"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...) // it refuses to run as root
	}
	sink := exec.Command(b.o.sink, args...)
	sink.Stdout, sink.Stderr = sinkLog, sinkLog
	if err := sink.Start(); err != nil {
		return err
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	if err := waitListening(addr); err != nil {
		return fmt.Errorf("%s: %w (%s)", b.o.sink, err, lastLine(sinkLog.Name()))
	}
	conf := fmt.Sprintf("relay_host = [127.0.0.1]:%d\n", port)
	rate, stats, err := b.runQueue(q, "relay", conf, n)
	if err != nil {
		return err
	}
	if err := figure.Queued(q, 0); err != nil {
		return err
	}
	after, err := doneRate(filepath.Join(b.dir, "probe"), n, par)
	if err != nil {
		return err
	}
	limit := (before + after) / 2
	fmt.Printf("%-44s %6.0f %-7s  mean of %.0f before and %.0f after\n",
		fmt.Sprintf("queue-done probe, %s", figure.Workers(par)), limit, "msg/s", before, after)
	figure.Line(fmt.Sprintf("relay: runner → smtp-sink, %s", figure.Workers(par)), rate, "msg/s", "queue-done limit", limit)
	fmt.Println(stats)
	return nil
}

// local is figure b: runner → Maildir, beside the Maildir probe.
func (b *bench) local() error {
	n, par := b.o.N, b.o.Par
	q, err := fill(filepath.Join(b.dir, "local-queue"), b.msg, n, func(i int) []string {
		return []string{figure.User(i, users) + "@bench.test"}
	})
	if err != nil {
		return err
	}
	usersFile := filepath.Join(b.dir, "users")
	if err := figure.WriteUsers(usersFile, users); err != nil {
		return err
	}
	mail := filepath.Join(b.dir, "local-mail")
	conf := fmt.Sprintf("users_file = %s\nmail_dir = %s\n", usersFile, filepath.Join(mail, "%u"))
	rate, stats, err := b.runQueue(q, "local", conf, n)
	if err != nil {
		return err
	}
	if err := figure.Queued(q, 0); err != nil {
		return err
	}
	if err := figure.Count(mail, n); err != nil {
		return err
	}
	limit, err := figure.Disk(filepath.Join(b.dir, "probe"), n, par, users, figure.Link)
	if err != nil {
		return err
	}
	figure.Line(fmt.Sprintf("maildir probe, %d Maildirs, %s", users, figure.Workers(par)), limit, "files/s", "", 0)
	figure.Line(fmt.Sprintf("local: runner → Maildir, %s", figure.Workers(par)), rate, "msg/s", "maildir probe", limit)
	fmt.Println(stats)
	fmt.Printf("%-44s %6.0f %-7s  postfix 3.7 %d–%d/s (README; smtp-source → Maildir, not this path)  %.2f–%.2f× postfix\n",
		"local vs Postfix end to end", rate, "msg/s", postfixLow, postfixHigh, rate/postfixHigh, rate/postfixLow)
	return nil
}

// runQueue writes a config for q (the common keys, then extra), runs
// `runner --force -C conf` once and returns the messages per second (want
// of them), and the counters' line.
func (b *bench) runQueue(q *queue.Queue, name, extra string, want int) (float64, string, error) {
	confFile := filepath.Join(b.dir, name+".conf")
	conf := fmt.Sprintf("hostname = bench.test\nqueue_dir = %s\nmail_owner = %s\naliases =\nqueue_concurrency = %d\n%s",
		q.Dir(), b.owner, b.o.Par, extra)
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		return 0, "", err
	}
	logFile := filepath.Join(b.dir, name+".log")
	log, err := os.Create(logFile)
	if err != nil {
		return 0, "", err
	}
	defer log.Close()
	cmd := exec.Command(b.runner, "--force", "-C", confFile)
	cmd.Stdout, cmd.Stderr = log, log
	before := figure.Snap(q.Dir())
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	after := figure.Snap(q.Dir())
	if err != nil {
		return 0, "", fmt.Errorf("runner: %w (log: %s)", err, lastLine(logFile))
	}
	if err := figure.Queued(q, 0); err != nil {
		return 0, "", fmt.Errorf("%w (log: %s)", err, lastLine(logFile))
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	stats := fmt.Sprintf("    %s; runner and children %.1f cpu-ms/msg",
		after.Stats(want, before), float64(cpu.Microseconds())/1e3/float64(want))
	return float64(want) / wall.Seconds(), stats, nil
}

// fill makes a fresh queue at dir and commits n copies of msg to it, message
// i to the recipients to(i), from fillWorkers goroutines.
func fill(dir string, msg []byte, n int, to func(i int) []string) (*queue.Queue, error) {
	q := queue.New(dir)
	if err := q.Init(-1, -1); err != nil {
		return nil, err
	}
	commit := func(_, i int) error {
		env := &queue.Envelope{From: "bench@bench.test"}
		for _, a := range to(i) {
			env.Recipients = append(env.Recipients, &queue.Recipient{Addr: a})
		}
		w, err := q.Create(env)
		if err != nil {
			return err
		}
		w.Write(msg)
		return w.Commit()
	}
	if _, err := figure.Parallel(n, fillWorkers, commit); err != nil {
		return nil, err
	}
	for i := n / fillWorkers * fillWorkers; i < n; i++ { // Parallel's remainder
		if err := commit(0, i); err != nil {
			return nil, err
		}
	}
	return q, figure.Queued(q, n)
}

// doneRate probes the queue's disk work once a message is delivered, par
// at a time, for n messages of rcpts(i) recipients in msg/ (written
// beforehand, not timed): as queue.Message.Mark and Remove do it, state/ID
// created, fsync'd and state/ fsync'd, one record appended and fsync'd per
// recipient, msg/ID unlinked, msg/ fsync'd, state/ID unlinked.
func doneRate(base string, n, par int) (float64, error) {
	defer os.RemoveAll(base)
	var dirs [2]*os.File // msg/, state/
	for i, name := range []string{"msg", "state"} {
		if err := os.MkdirAll(filepath.Join(base, name), 0o700); err != nil {
			return 0, err
		}
		d, err := os.Open(filepath.Join(base, name))
		if err != nil {
			return 0, err
		}
		defer d.Close()
		dirs[i] = d
	}
	msgDir, stateDir := dirs[0].Name(), dirs[1].Name()
	body := make([]byte, 4096)
	for i := range n {
		if err := os.WriteFile(filepath.Join(msgDir, fmt.Sprint(i)), body, 0o600); err != nil {
			return 0, err
		}
	}
	record := []byte(`{"rcpt":0,"state":"delivered","at":"2026-11-28T05:00:00.000000000Z","reply":"250 2.0.0 Ok: queued as 4Fq9"}` + "\n")
	return figure.Parallel(n, par, func(_, i int) error {
		name := fmt.Sprint(i)
		state := filepath.Join(stateDir, name)
		f, err := os.OpenFile(state, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return err
		}
		if err := dirs[1].Sync(); err != nil {
			return err
		}
		for range rcpts(i) {
			if _, err := f.Write(record); err != nil {
				return err
			}
			if err := f.Sync(); err != nil {
				return err
			}
		}
		if err := os.Remove(filepath.Join(msgDir, name)); err != nil {
			return err
		}
		if err := dirs[0].Sync(); err != nil {
			return err
		}
		return os.Remove(state)
	})
}

// freePort is a loopback port nobody listens on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits up to 5 s for addr to accept a connection.
func waitListening(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastLine is the last line of a log file, for an error message.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return path + ": " + lines[len(lines)-1]
}
