// Command pop3d is yubin's POP3 server. Usage: man/pop3d.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir rules: internal/pop3.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/maillog"
	"yubin/internal/pop3"
	"yubin/internal/status"
)

func main() {
	app := &cli.App{
		Name:      "pop3d",
		Usage:     "the yubin POP3 server",
		UsageText: "pop3d [-C file] [-i] [--tls]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "i", Usage: "serve one session on stdin and stdout (inetd, systemd Accept=yes)"},
			&cli.BoolFlag{Name: "tls", Usage: "with -i: the connection starts with TLS (port 995)"},
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
		return cli.Exit("pop3d: unexpected argument "+c.Args().First(), status.Usage)
	}
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return cli.Exit("pop3d: "+err.Error(), status.Config)
	}
	users, err := auth.Open(cfg.UsersFile, cfg.MailOwner)
	if err != nil {
		return cli.Exit("pop3d: users_file "+err.Error(), status.Config)
	}
	opts := pop3.Options{Hostname: cfg.Hostname, MailDir: cfg.MailDir, Users: users, PlaintextAuth: cfg.PlaintextAuth}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return cli.Exit("pop3d: tls_cert: "+err.Error(), status.Config)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	maillog.Syslog("yubin/pop3d")

	// One session: -i, or stdin is a connection (inetd, Accept=yes).
	if c.Bool("i") || pop3.IsSocket(os.Stdin) {
		conn, err := pop3.Conn(os.Stdin, os.Stdout)
		if err != nil {
			return cli.Exit("pop3d: stdin: "+err.Error(), status.OSErr)
		}
		opts.ImplicitTLS = c.Bool("tls") || implicitPort(conn.LocalAddr(), cfg.POP3SListen)
		if opts.ImplicitTLS && opts.TLS == nil {
			return cli.Exit("pop3d: --tls or pop3s_listen needs tls_cert and tls_key", status.Config)
		}
		// A session's live heap is its message list: small, so the
		// default GC would run every few RETRs (bench/README.md, pop3).
		debug.SetGCPercent(400)
		if err := pop3.Serve(context.Background(), opts, conn); err != nil {
			return cli.Exit("pop3d: "+err.Error(), status.IOErr)
		}
		return nil
	}

	// A listener: systemd's sockets (Accept=no), else pop3_listen and
	// pop3s_listen. Each session runs in a child "pop3d -i" (internal/pop3,
	// Privileges); run as root, this process keeps root only to start them.
	listeners, err := listen(cfg)
	if err != nil {
		return cli.Exit("pop3d: "+err.Error(), status.OSErr)
	}
	self, err := os.Executable()
	if err != nil {
		return cli.Exit("pop3d: "+err.Error(), status.OSErr)
	}
	env := slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, "LISTEN_") })
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		args := []string{"-i"}
		if l.tls {
			if opts.TLS == nil {
				return cli.Exit("pop3d: pop3s_listen needs tls_cert and tls_key", status.Config)
			}
			args = append(args, "--tls")
		}
		if conf := c.String("C"); conf != "" {
			args = append(args, "-C", conf)
		}
		go func() {
			errs <- pop3.Spawn(l, func() *exec.Cmd {
				cmd := exec.Command(self, args...)
				cmd.Env, cmd.Stderr = env, os.Stderr
				return cmd
			}, 0)
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil // sessions in progress go on in their own processes
	case err := <-errs:
		return cli.Exit(fmt.Sprintf("pop3d: %v", err), status.OSErr)
	}
}

// listener is a listening socket and whether its sessions start with TLS.
type listener struct {
	net.Listener
	tls bool
}

// listen returns systemd's sockets when LISTEN_PID is this process (a
// socket named "pop3s" by FileDescriptorName=, or on a pop3s_listen port,
// is implicit TLS), otherwise binds pop3_listen and pop3s_listen.
func listen(cfg *config.Config) ([]listener, error) {
	var ls []listener
	if pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID")); pid == os.Getpid() {
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
		for i := range n {
			f := os.NewFile(uintptr(3+i), "systemd socket")
			l, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("systemd socket %d: %w", 3+i, err)
			}
			tls := i < len(names) && names[i] == "pop3s" || implicitPort(l.Addr(), cfg.POP3SListen)
			ls = append(ls, listener{l, tls})
		}
		return ls, nil
	}
	for _, set := range []struct {
		addrs []string
		tls   bool
	}{{cfg.POP3Listen, false}, {cfg.POP3SListen, true}} {
		for _, a := range set.addrs {
			l, err := net.Listen("tcp", a)
			if err != nil {
				return nil, err
			}
			ls = append(ls, listener{l, set.tls})
		}
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("pop3_listen and pop3s_listen are empty: nothing to listen on")
	}
	return ls, nil
}

// implicitPort reports whether addr's port is that of a pop3s_listen address.
func implicitPort(addr net.Addr, pop3s []string) bool {
	a, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	for _, s := range pop3s {
		if _, port, err := net.SplitHostPort(s); err == nil && port == strconv.Itoa(a.Port) {
			return true
		}
	}
	return false
}
