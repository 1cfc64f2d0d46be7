package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"yubin/internal/config"
	"yubin/internal/maillog"
)

// queueRunner is the runner daemon smtpd starts beside itself (as
// Postfix's master starts qmgr), so that one service moves mail in and
// out. It is started while smtpd is still root, and spoken to through a
// pipe rather than by signals, which smtpd may no longer send once it is
// mail_owner: a byte asks it to reload, the pipe's end to stop.
type queueRunner struct {
	cmd  *exec.Cmd
	ctl  *os.File   // the pipe's write end
	done chan error // the runner's exit
	name string     // for the log
}

// startRunner starts `runner --interval queue_run_delay` from smtpd's own
// directory, with the same configuration file.
func startRunner(conf string, cfg *config.Config) (*queueRunner, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(filepath.Dir(self), "runner")
	args := []string{"--interval", cfg.QueueRunDelay.String(), "--parent-fd", "3"}
	if conf != "" {
		args = append(args, "-C", conf)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("queue runner: %w", err)
	}
	q := &queueRunner{cmd: cmd, ctl: w, done: make(chan error, 1), name: path}
	go func() { q.done <- cmd.Wait() }()
	return q, nil
}

// reload asks the runner to re-read the configuration: it finishes the
// attempts in flight and starts again.
func (q *queueRunner) reload() {
	if _, err := q.ctl.Write([]byte{'h'}); err != nil {
		maillog.Reload("runner", "fail", err.Error())
	}
}

// stop tells the runner to finish the attempts in flight and waits for
// it, at most wait; a runner still busy then goes on alone until it is
// done.
func (q *queueRunner) stop(wait time.Duration) {
	q.ctl.Close()
	select {
	case <-q.done:
	case <-time.After(wait):
	}
}
