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
		q.Wake("")
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
	o.Select = sel
	o.Force = c.Bool("force") || sel != nil
	maillog.SetOutput(os.Stderr)
	maillog.Open("runner", cfg.MaillogFile)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if d := c.Duration("interval"); d > 0 {
		o.Interval = d
		err = runner.Run(ctx, o)
	} else {
		err = runner.Once(ctx, o)
	}
	if err != nil {
		return cli.Exit("runner: "+err.Error(), status.TempFail)
	}
	return nil
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
		InsecureTLS: !cfg.RelayTLSVerify,
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
	return runner.Options{
		Queue: q, Hostname: cfg.Hostname, LocalDomains: cfg.LocalDomains,
		Aliases: cfg.Aliases, UsersFile: cfg.UsersFile, MailOwner: cfg.MailOwner,
		MailDir:     cfg.MailDir,
		Relay:       relay.New(ro),
		Concurrency: cfg.QueueConcurrency, DestinationConcurrency: cfg.DestinationConcurrency,
		MinBackoff: cfg.MinBackoffTime, MaxBackoff: cfg.MaxBackoffTime, MaxQueueLifetime: cfg.MaxQueueLifetime,
		BounceLimit: bounceLimit,
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
