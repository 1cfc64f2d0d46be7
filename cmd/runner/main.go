// Command runner is yubin's queue runner: it delivers queued mail, once or
// as a daemon. sendmail -q runs it. Usage: man/runner.8; configuration:
// man/yubin.conf.5.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"

	"yubin/internal/config"
	"yubin/internal/maillog"
	"yubin/internal/queue"
	"yubin/internal/relay"
	"yubin/internal/runner"
	"yubin/internal/status"
)

func main() {
	app := &cli.App{
		Name:      "runner",
		Usage:     "deliver the mail queue",
		UsageText: "runner [-C file] [--interval 30m] [--force] [--select [!]I|R|S:value]...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.DurationFlag{Name: "interval", Usage: "run as a daemon, scanning the queue every `interval`; 0: once"},
			&cli.BoolFlag{Name: "force", Usage: "attempt deferred recipients now, not when due"},
			&cli.StringSliceFlag{Name: "select", Usage: "only messages whose queue ID (I), a recipient (R) or the sender (S) contains `value`"},
			&cli.IntFlag{Name: "parent-fd", Hidden: true, Usage: "daemon started by smtpd: stop at EOF on this descriptor, reload at a byte"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(status.Usage) // cli has printed the usage error
	}
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("runner: unexpected argument "+c.Args().First(), status.Usage)
	}
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return cli.Exit("runner: "+err.Error(), status.Config)
	}
	q := queue.New(cfg.QueueDir)
	if !privileged(cfg.MailOwner) {
		// Delivery needs root (or mail_owner, for virtual users): anyone
		// else may only ask a running daemon to flush, as postqueue -f.
		if c.Duration("interval") > 0 {
			return cli.Exit("runner: only root or "+cfg.MailOwner+" may run the queue daemon", status.NoPerm)
		}
		if err := q.Wake(""); err != nil {
			return cli.Exit("runner: flush: "+err.Error(), status.TempFail)
		}
		return nil
	}
	sel, err := selector(c.StringSlice("select"))
	if err != nil {
		return cli.Exit("runner: "+err.Error(), status.Usage)
	}
	o, err := options(cfg, q)
	if err != nil {
		return cli.Exit("runner: "+err.Error(), status.Config)
	}
	defer o.Relay.Close() // QUIT to the connections kept for reuse
	o.Select = sel
	o.Force = c.Bool("force") || sel != nil
	maillog.SetOutput(os.Stderr)
	maillog.Open("runner", cfg.MaillogFile)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if d := c.Duration("interval"); d > 0 {
		o.Interval = d
		var parent <-chan bool
		if fd := c.Int("parent-fd"); fd > 0 {
			parent = watchParent(os.NewFile(uintptr(fd), "parent"))
			o.Wait = true // for the runner of an smtpd before this one
		}
		for {
			ctx, reload := daemonContext(ctx, parent)
			if err = runner.Run(ctx, o); err != nil || !reload() {
				break
			}
			// A configuration that does not load keeps the one in force.
			if cfg, err := config.Load(c.String("C")); err != nil {
				maillog.Reload("runner", "fail", err.Error())
			} else if _, err := options(cfg, q); err != nil {
				maillog.Reload("runner", "fail", err.Error())
			} else {
				return reexec()
			}
		}
	} else {
		err = runner.Once(ctx, o)
	}
	if err != nil {
		return cli.Exit("runner: "+err.Error(), status.TempFail)
	}
	return nil
}

// watchParent reads the descriptor smtpd gave its runner: true for each
// byte (smtpd was told to reload), false at its end (smtpd has stopped: it
// cannot signal a root child once it has dropped its privileges).
func watchParent(f *os.File) <-chan bool {
	ch := make(chan bool)
	go func() {
		var b [1]byte
		for {
			if n, _ := f.Read(b[:]); n == 0 {
				ch <- false
				return
			}
			ch <- true
		}
	}()
	return ch
}

// daemonContext is ctx, also ended by SIGHUP and a true from parent (a
// reload), and by a false from parent. reload reports whether the daemon
// stopped to reload.
func daemonContext(ctx context.Context, parent <-chan bool) (_ context.Context, reload func() bool) {
	ctx, cancel := context.WithCancel(ctx)
	var reloading atomic.Bool
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		select {
		case <-hup:
			reloading.Store(true)
		case r := <-parent:
			reloading.Store(r)
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, reloading.Load
}

// reexec starts the runner again in this process, with the same
// arguments, so that it reads the configuration anew; the attempts in
// flight have finished.
func reexec() error {
	self, err := os.Executable()
	if err == nil {
		maillog.Reload("runner", "ok", "")
		err = syscall.Exec(self, os.Args, os.Environ())
	}
	return cli.Exit("runner: reload: "+err.Error(), status.OSErr)
}

// options builds the runner's Options from yubin.conf.
func options(cfg *config.Config, q *queue.Queue) (runner.Options, error) {
	var err error
	dns := cfg.DNSServers
	if len(dns) == 0 {
		dns = relay.SystemServers()
	}
	ro := relay.Options{
		Hostname: cfg.Hostname, Resolver: &relay.Resolver{Servers: dns, Timeout: cfg.RelayConnectTimeout},
		Port: cfg.RemoteSMTPPort, RelayHost: cfg.RelayHost,
		DialTimeout: cfg.RelayConnectTimeout, CommandTimeout: cfg.RelayTimeout, DataTimeout: 2 * cfg.RelayTimeout,
		InsecureTLS: !cfg.RelayTLSVerify, TLSPolicy: map[string]relay.TLSLevel{},
		CacheTime: cfg.RelayConnectionCacheTime,
	}
	for domain, level := range cfg.RelayTLSPolicy {
		ro.TLSPolicy[domain] = relay.TLSLevel(level)
	}
	if ro.CacheTime == 0 {
		ro.CacheTime = -1 // relay_connection_cache_time = 0: no reuse
	}
	if cfg.RelayHost != "" && cfg.RelayAuthFile != "" {
		if ro.Auth, err = relay.ReadAuthFile(cfg.RelayAuthFile, cfg.RelayHost); err != nil {
			return runner.Options{}, fmt.Errorf("relay_auth_file: %w", err)
		}
	}
	bounceLimit := cfg.BounceLimit
	if bounceLimit == 0 {
		bounceLimit = -1
	}
	delayWarning := cfg.DelayWarningTime
	if delayWarning == 0 {
		delayWarning = -1
	}
	return runner.Options{
		Queue: q, Hostname: cfg.Hostname, LocalDomains: cfg.LocalDomains,
		Aliases: cfg.Aliases, UsersFile: cfg.UsersFile, MailOwner: cfg.MailOwner,
		MailDir:     cfg.MailDir,
		Relay:       relay.New(ro),
		Concurrency: cfg.QueueConcurrency, DestinationConcurrency: cfg.DestinationConcurrency,
		MinBackoff: cfg.MinBackoffTime, MaxBackoff: cfg.MaxBackoffTime, MaxQueueLifetime: cfg.MaxQueueLifetime,
		DelayWarning: delayWarning, BounceLimit: bounceLimit,
	}, nil
}

// privileged: root, or the mail owner.
func privileged(owner string) bool {
	if os.Getuid() == 0 {
		return true
	}
	u, err := user.Current()
	return err == nil && u.Username == owner
}

// selector turns --select values ("I:3FQ", "!R:example.org") into a filter,
// as sendmail 8's -qI, -qR, -qS: substring matches, all must hold.
func selector(sels []string) (func(*queue.Envelope) bool, error) {
	if len(sels) == 0 {
		return nil, nil
	}
	type sel struct {
		field  byte
		value  string
		negate bool
	}
	var ss []sel
	for _, s := range sels {
		neg := strings.HasPrefix(s, "!")
		s = strings.TrimPrefix(s, "!")
		f, v, ok := strings.Cut(s, ":")
		if !ok || len(f) != 1 || !strings.Contains("IRS", f) {
			return nil, fmt.Errorf("--select %q: want I:, R: or S: and a value", s)
		}
		ss = append(ss, sel{f[0], strings.ToLower(v), neg})
	}
	return func(env *queue.Envelope) bool {
		for _, s := range ss {
			var hit bool
			switch s.field {
			case 'I':
				hit = strings.Contains(strings.ToLower(env.ID), s.value)
			case 'S':
				hit = strings.Contains(strings.ToLower(env.From), s.value)
			case 'R':
				for _, rc := range env.Recipients {
					if !rc.State.Done() && strings.Contains(strings.ToLower(rc.Addr), s.value) {
						hit = true
					}
				}
			}
			if hit == s.negate {
				return false
			}
		}
		return true
	}, nil
}
