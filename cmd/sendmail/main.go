// Command sendmail is yubin's drop-in /usr/sbin/sendmail: it queues a message
// from stdin. Flags and exit status: man/sendmail.8; configuration: man/yubin.conf.5.
//
// A run lasts milliseconds, so the runtime is told not to read cgroup CPU
// limits at start-up (containermaxprocs): it only costs time here.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"yubin/internal/config"
	"yubin/internal/maillog"
	"yubin/internal/mailq"
	"yubin/internal/queue"
	"yubin/internal/status"
	"yubin/internal/submit"
)

func main() {
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:]))
}

func run(name string, args []string) int {
	opts, err := submit.ParseArgs(args)
	var addrErr *submit.AddressError
	if errors.As(err, &addrErr) {
		return fail(status.NoUser, "", err)
	}
	if err != nil {
		return fail(status.Usage, "", err)
	}
	// Installed links name the mode, as with every sendmail.
	switch name {
	case "mailq":
		opts.Mode = submit.ModePrintQueue
	case "newaliases":
		opts.Mode = submit.ModeInitAliases
	}
	dropSetgidForOtherConfig(opts.Config)
	cfg, err := config.Load(opts.Config)
	if err != nil {
		return fail(status.Config, "", err)
	}
	maillog.Open("sendmail", cfg.MaillogFile)
	q := queue.New(cfg.QueueDir)

	switch opts.Mode {
	case submit.ModeDeliver:
		return enqueue(cfg, q, opts)
	case submit.ModePrintQueue:
		if err := mailq.Print(os.Stdout, os.Stderr, q, false); err != nil {
			return fail(status.TempFail, "", err)
		}
		return status.OK
	case submit.ModeSMTP:
		return runSibling("-bs", opts.Config, "smtpd", "-i")
	case submit.ModeInitAliases:
		return runSibling("-bi", opts.Config, "newaliases")
	case submit.ModeQueueRun:
		return runSibling("-q", opts.Config, "runner", queueRunArgs(opts)...)
	case submit.ModeHostStatus:
		return status.OK // -bh, -bH: no host status database, as Postfix
	default:
		// Delivery, aliases and the daemon arrive with the runner,
		// newaliases and smtpd; until then these modes say so.
		return fail(status.Unavailable, modeFlag(opts.Mode), errors.New("not available in this version of yubin yet"))
	}
}

func enqueue(cfg *config.Config, q *queue.Queue, opts *submit.Options) int {
	s := &submit.Submission{
		Options:  opts,
		User:     submit.CurrentUser(),
		Hostname: cfg.Hostname,
		Queue:    q,
		MaxSize:  cfg.MessageSizeLimit,
	}
	if !q.Initialized() {
		// A fresh install: make the queue rather than fail, when we may.
		if err := initQueue(q, cfg.MailOwner); err != nil {
			return fail(status.TempFail, "", err)
		}
	}
	id, err := s.Run(os.Stdin)
	var addrErr *submit.AddressError
	var qErr *submit.QueueError
	switch {
	case err == nil:
	case errors.Is(err, submit.ErrNoRecipients):
		return fail(status.Usage, "", err)
	case errors.As(err, &addrErr):
		return fail(status.NoUser, "", err)
	case errors.As(err, &qErr):
		return fail(status.TempFail, "", err)
	default:
		// The message itself cannot be used: too big, a bad header.
		return fail(status.DataErr, "", err)
	}
	if opts.Verbose {
		fmt.Fprintf(os.Stderr, "sendmail: queued as %s\n", id)
	}
	return status.OK
}

// dropSetgidForOtherConfig gives up the setgid privilege when an ordinary
// user names another configuration, as sendmail 8 does for -C: its queue_dir
// could point anywhere the mail group may write.
func dropSetgidForOtherConfig(conf string) {
	if conf == "" && os.Getenv("YUBIN_CONF") == "" {
		return
	}
	if gid := os.Getgid(); gid != os.Getegid() && os.Getuid() != 0 {
		if err := syscall.Setregid(gid, gid); err != nil {
			fmt.Fprintf(os.Stderr, "sendmail: dropping group privileges: %v\n", err)
			os.Exit(status.OSErr)
		}
	}
}

// runSibling replaces sendmail with another yubin program from its own
// directory, passing -C on: -bs runs `smtpd -i` (one session code for the
// network and for local clients, as Postfix's sendmail runs its smtpd) and -bi
// runs newaliases. sendmail itself stays small enough to start fast.
func runSibling(flag, conf, prog string, args ...string) int {
	self, err := os.Executable()
	if err != nil {
		return fail(status.OSFile, flag, err)
	}
	path := filepath.Join(filepath.Dir(self), prog)
	argv := append([]string{prog}, args...)
	if conf != "" {
		argv = append(argv, "-C", conf)
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fail(status.OSFile, flag+": "+path, err)
}

// queueRunArgs turns -q's forms into the runner's flags: -q30m is the
// daemon scanning every 30 minutes, -q alone one run that attempts every
// message now (sendmail 8), -qI/-qR/-qS select messages.
func queueRunArgs(opts *submit.Options) []string {
	var args []string
	if opts.QueueInterval > 0 {
		args = append(args, "--interval", opts.QueueInterval.String())
	} else {
		args = append(args, "--force")
	}
	for _, s := range opts.QueueSelect {
		v := string(s.Field) + ":" + s.Value
		if s.Negate {
			v = "!" + v
		}
		args = append(args, "--select", v)
	}
	return args
}

// initQueue creates the queue, owned by mail_owner when run by root.
func initQueue(q *queue.Queue, owner string) error {
	if os.Geteuid() != 0 {
		return q.Init(-1, -1)
	}
	u, err := user.Lookup(owner)
	if err != nil {
		return fmt.Errorf("mail_owner %s: %w", owner, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return q.Init(uid, gid)
}

func modeFlag(m submit.Mode) string {
	switch m {
	case submit.ModeQueueRun:
		return "-q"
	case submit.ModeVerify:
		return "-bv"
	case submit.ModeDaemon:
		return "-bd"
	}
	return "mode"
}

// fail prints one line, "sendmail: what: why", and returns the exit status.
func fail(code int, what string, err error) int {
	if what != "" {
		fmt.Fprintf(os.Stderr, "sendmail: %s: %v\n", what, err)
	} else {
		fmt.Fprintf(os.Stderr, "sendmail: %v\n", err)
	}
	return code
}
