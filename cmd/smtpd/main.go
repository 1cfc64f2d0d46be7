// Command smtpd is yubin's SMTP server. Usage: man/smtpd.8; configuration:
// man/yubin.conf.5. The protocol and the policy: internal/smtpserver.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"yubin/internal/aliases"
	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/daemon"
	"yubin/internal/maillog"
	"yubin/internal/queue"
	"yubin/internal/smtpserver"
	"yubin/internal/status"
	"yubin/internal/submit"
)

func main() {
	app := &cli.App{
		Name:      "smtpd",
		Usage:     "the yubin SMTP server",
		UsageText: "smtpd [-C file] [--no-runner | -i [--tls] | -flush]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "i", Usage: "serve one session on stdin and stdout (inetd, systemd Accept=yes, sendmail -bs)"},
			&cli.BoolFlag{Name: "tls", Usage: "with -i: the connection starts with TLS (port 465)"},
			&cli.BoolFlag{Name: "no-runner", Usage: "do not start the queue runner (run `runner --interval 5m` yourself)"},
			&cli.BoolFlag{Name: "flush", Usage: "ask the queue runner daemon to attempt all deferred mail now (postqueue -f)"},
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
		return cli.Exit("smtpd: unexpected argument "+c.Args().First(), status.Usage)
	}
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return cli.Exit("smtpd: "+err.Error(), status.Config)
	}
	if c.Bool("flush") {
		return flush(cfg, c.String("C"))
	}
	if c.Bool("i") || daemon.IsSocket(os.Stdin) {
		maillog.Open("smtpd", cfg.MaillogFile)
		return serveStdio(c, cfg)
	}
	maillog.SetOutput(os.Stderr) // unless there is a syslog or maillog_file
	maillog.Open("smtpd", cfg.MaillogFile)
	opts, err := options(cfg)
	if err != nil {
		return cli.Exit("smtpd: "+err.Error(), status.Config)
	}
	return serveDaemon(c, cfg, opts)
}

// flush asks the queue runner daemon to attempt every deferred recipient
// now (an empty wake-up), as Postfix's postqueue -f; this process delivers
// nothing. With no daemon listening it fails with EX_TEMPFAIL: mail waits
// for the daemon's start, or for root's sendmail -q. Anyone may ask: a user
// who cannot reach queue_dir/wake hands over to sendmail -q, installed
// setgid to the queue's group, which for an ordinary user does just this.
func flush(cfg *config.Config, conf string) error {
	err := queue.New(cfg.QueueDir).Wake("")
	if errors.Is(err, syscall.EACCES) && os.Geteuid() != 0 {
		self, xerr := os.Executable()
		if xerr == nil {
			argv := []string{"sendmail", "-q"}
			if conf != "" {
				argv = append(argv, "-C", conf)
			}
			xerr = syscall.Exec(filepath.Join(filepath.Dir(self), "sendmail"), argv, os.Environ())
		}
		err = fmt.Errorf("%w; sendmail -q: %v", err, xerr)
	}
	if err != nil {
		return cli.Exit("smtpd: -flush: "+err.Error(), status.TempFail)
	}
	return nil
}

// serveStdio serves one session on stdin: a TCP connection from inetd or
// systemd (Accept=yes) is a network client; anything else (a pipe, a
// terminal, sendmail -bs's socket pair) is a local user submitting mail,
// known by the real uid.
func serveStdio(c *cli.Context, cfg *config.Config) error {
	ctx := context.Background()
	switch peer, _ := syscall.Getpeername(0); peer.(type) {
	case *syscall.SockaddrInet4, *syscall.SockaddrInet6:
		opts, err := options(cfg)
		if err != nil {
			return cli.Exit("smtpd: "+err.Error(), status.Config)
		}
		// No privileges dropped here: inetd's user field (mail) or
		// systemd's User= decide who runs a one-session smtpd.
		conn, err := net.FileConn(os.Stdin)
		if err != nil {
			return exit(err)
		}
		opts.ImplicitTLS = c.Bool("tls") || daemon.ImplicitTLS(conn.LocalAddr(), cfg.SMTPSListen)
		opts.Submission = opts.ImplicitTLS || daemon.ImplicitTLS(conn.LocalAddr(), cfg.SubmissionListen)
		return exit(smtpserver.ServeConn(ctx, opts, conn))
	}
	// A local submission needs neither the users nor the aliases (it may
	// send anywhere), which the user may not be able to read.
	u := submit.CurrentUser()
	opts := smtpserver.Options{
		Hostname:        cfg.Hostname,
		Queue:           queue.New(cfg.QueueDir),
		MaxMessageBytes: cfg.MessageSizeLimit,
		MaxRecipients:   cfg.SMTPRecipientLimit,
		Local:           &smtpserver.LocalUser{Name: u.Name, UID: u.UID},
	}
	return exit(smtpserver.ServeStdio(ctx, opts, os.Stdin, os.Stdout))
}

// serveDaemon listens on smtp_listen, submission_listen and smtps_listen
// (or systemd's sockets), drops to mail_owner, and serves until SIGTERM;
// SIGHUP re-reads the configuration's policy and the aliases.
func serveDaemon(c *cli.Context, cfg *config.Config, opts smtpserver.Options) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	listeners, err := listen(cfg)
	if err != nil {
		return cli.Exit("smtpd: "+err.Error(), status.OSErr)
	}
	kinds := map[kind]*smtpserver.Server{}
	for _, l := range listeners {
		if kinds[l.kind] != nil {
			continue
		}
		o := opts
		o.Submission = l.kind != smtp
		if l.kind == smtps && o.TLS == nil {
			return cli.Exit("smtpd: smtps_listen needs tls_cert and tls_key", status.Config)
		}
		if kinds[l.kind], err = smtpserver.NewServer(o); err != nil {
			return cli.Exit("smtpd: "+err.Error(), status.Config)
		}
	}

	if err := initQueue(cfg, opts.Queue); err != nil {
		return cli.Exit("smtpd: "+err.Error(), status.OSErr)
	}
	var qr *queueRunner
	runnerDone := make(<-chan error) // never, without a runner
	if !c.Bool("no-runner") {
		if qr, err = startRunner(c.String("C"), cfg); err != nil {
			return cli.Exit("smtpd: "+err.Error(), status.OSErr)
		}
		runnerDone = qr.done
	}
	if err := dropPrivileges(cfg); err != nil {
		if qr != nil {
			qr.stop(opts.DataTimeout)
		}
		return cli.Exit("smtpd: "+err.Error(), status.OSErr)
	}

	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		s := kinds[l.kind]
		go func() {
			if l.kind == smtps {
				errs <- s.ServeTLS(l)
			} else {
				errs <- s.Serve(l)
			}
		}()
	}
	current := opts
	for {
		select {
		case err := <-errs:
			if qr != nil {
				qr.stop(opts.DataTimeout)
			}
			return cli.Exit(fmt.Sprintf("smtpd: %v", err), status.OSErr)
		case err := <-runnerDone:
			// Mail would be accepted and never delivered: stop, so that
			// the service manager starts both again.
			shutdown(kinds, opts.DataTimeout)
			return cli.Exit(fmt.Sprintf("smtpd: the queue runner %s stopped (%v): stopping", qr.name, err), status.Software)
		case s := <-sig:
			if s == syscall.SIGHUP {
				current = reload(c, kinds, current)
				if qr != nil {
					qr.reload()
				}
				continue
			}
			shutdown(kinds, opts.DataTimeout)
			if qr != nil {
				qr.stop(opts.DataTimeout)
			}
			return nil
		}
	}
}

// initQueue makes the queue's missing directories, owned by mail_owner
// when smtpd runs as root.
func initQueue(cfg *config.Config, q *queue.Queue) error {
	if q.Initialized() {
		return nil
	}
	if os.Geteuid() != 0 {
		return q.Init(-1, -1)
	}
	u, err := mailOwner(cfg)
	if err == nil {
		err = q.Init(u.UID, u.GID)
	}
	return err
}

// dropPrivileges makes a process started as root mail_owner for good,
// once the sockets are bound, the users_file, aliases and TLS key read and
// the runner started.
func dropPrivileges(cfg *config.Config) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := mailOwner(cfg)
	if err == nil {
		err = daemon.BecomeUser(u)
	}
	if err != nil {
		return fmt.Errorf("mail_owner %s: %w", cfg.MailOwner, err)
	}
	return nil
}

func mailOwner(cfg *config.Config) (*auth.User, error) {
	owners, err := auth.Open("", cfg.MailOwner)
	if err != nil {
		return nil, fmt.Errorf("mail_owner %s: %w", cfg.MailOwner, err)
	}
	u, err := owners.Lookup(cfg.MailOwner)
	if err != nil {
		return nil, fmt.Errorf("mail_owner %s: %w", cfg.MailOwner, err)
	}
	return u, nil
}

// reload re-reads the configuration, users_file and the aliases for the
// sessions' next commands, and returns the options now in force; an error
// keeps what is in force. A users_file that mail_owner cannot read keeps
// the users read at start. Listen addresses, hostname, TLS and the size
// limit need a restart.
func reload(c *cli.Context, servers map[kind]*smtpserver.Server, cur smtpserver.Options) smtpserver.Options {
	cfg, err := config.Load(c.String("C"))
	var opts smtpserver.Options
	if err == nil {
		opts, err = policy(cfg, cur.Users)
	}
	if err != nil {
		maillog.Reload("smtp", "fail", err.Error())
		return cur
	}
	for _, s := range servers {
		s.Reload(opts)
	}
	maillog.Reload("smtp", "ok", "")
	return opts
}

// shutdown answers 421 to every waiting session and lets messages in DATA
// finish, for at most the data timeout.
func shutdown(servers map[kind]*smtpserver.Server, wait time.Duration) {
	if wait <= 0 {
		wait = smtpserver.DefaultDataTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { s.Shutdown(ctx) })
	}
	wg.Wait()
}

// options builds the server's options from the configuration: the
// policy, the aliases and users, TLS.
func options(cfg *config.Config) (smtpserver.Options, error) {
	opts, err := policy(cfg, nil)
	if err != nil {
		return opts, err
	}
	if opts.TLS, err = daemon.TLSConfig(cfg.TLSCert, cfg.TLSKey); err != nil {
		return smtpserver.Options{}, err
	}
	return opts, nil
}

// policy builds the options but TLS: what SIGHUP may re-read. With
// oldUsers, a users_file that cannot be read is logged and oldUsers kept.
func policy(cfg *config.Config, oldUsers *auth.Directory) (smtpserver.Options, error) {
	users, err := auth.Open(cfg.UsersFile, cfg.MailOwner)
	if err != nil && oldUsers != nil {
		maillog.ServerError("smtp", "", "", "users_file "+err.Error()+": keeping the users read before")
		users, err = oldUsers, nil
	}
	if err != nil {
		return smtpserver.Options{}, fmt.Errorf("users_file %w", err)
	}
	db, warning, err := aliases.Open(cfg.Aliases)
	if err != nil {
		return smtpserver.Options{}, fmt.Errorf("aliases %s: %w", cfg.Aliases, err)
	}
	if warning != nil {
		maillog.ServerError("smtp", "", "", "aliases: "+warning.Error())
	}
	return smtpserver.Options{
		Hostname:          cfg.Hostname,
		Queue:             queue.New(cfg.QueueDir),
		MaxMessageBytes:   cfg.MessageSizeLimit,
		MaxRecipients:     cfg.SMTPRecipientLimit,
		Timeout:           cfg.SMTPTimeout,
		DataTimeout:       cfg.SMTPDataTimeout,
		MaxErrors:         cfg.SMTPErrorLimit,
		MaxConnsPerClient: cfg.SMTPClientConnectionLimit,
		LocalDomains:      cfg.LocalDomains,
		RelayNetworks:     cfg.RelayNetworks,
		Aliases:           db,
		Users:             users,
	}, nil
}

// kind is what a listening socket serves.
type kind int

const (
	smtp       kind = iota // port 25: relay by relay_networks, no AUTH
	submission             // port 587: relay by AUTH
	smtps                  // port 465: submission inside TLS
)

type listener struct {
	net.Listener
	kind kind
}

// listen returns systemd's sockets (Accept=no), sorted by port: those on
// a submission_listen port are submission, those named "smtps" or on an
// smtps_listen port start with TLS; otherwise it binds the configured
// addresses.
func listen(cfg *config.Config) ([]listener, error) {
	var out []listener
	if pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID")); pid == os.Getpid() {
		plain := append(append([]string{}, cfg.SMTPListen...), cfg.SubmissionListen...)
		ls, err := daemon.Listen(plain, cfg.SMTPSListen, "smtps")
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			k := smtp
			switch {
			case l.TLS:
				k = smtps
			case daemon.ImplicitTLS(l.Addr(), cfg.SubmissionListen): // same port
				k = submission
			}
			out = append(out, listener{l.Listener, k})
		}
		return out, nil
	}
	for _, set := range []struct {
		addrs []string
		kind  kind
	}{{cfg.SMTPListen, smtp}, {cfg.SubmissionListen, submission}, {cfg.SMTPSListen, smtps}} {
		if len(set.addrs) == 0 {
			continue
		}
		ls, err := daemon.Listen(set.addrs, nil, "")
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, err
		}
		for _, l := range ls {
			out = append(out, listener{l.Listener, set.kind})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no listen address configured (smtp_listen, submission_listen, smtps_listen)")
	}
	return out, nil
}

func exit(err error) error {
	if err != nil {
		return cli.Exit(fmt.Sprintf("smtpd: %v", err), status.IOErr)
	}
	return nil
}
