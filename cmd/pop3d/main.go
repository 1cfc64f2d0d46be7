// Command pop3d is yubin's POP3 server. Usage: man/pop3d.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir rules: internal/pop3.
package main

import (
	"context"
	"crypto/tls"
	"os"
	"runtime/debug"
	"slices"

	"github.com/urfave/cli/v2"

	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/daemon"
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
	if c.Bool("i") || daemon.IsSocket(os.Stdin) {
		conn, err := daemon.StdioConn(os.Stdin, os.Stdout)
		if err != nil {
			return cli.Exit("pop3d: stdin: "+err.Error(), status.OSErr)
		}
		opts.ImplicitTLS = c.Bool("tls") || daemon.ImplicitTLS(conn.LocalAddr(), cfg.POP3SListen)
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
	listeners, err := daemon.Listen(cfg.POP3Listen, cfg.POP3SListen, "pop3s")
	if err != nil {
		return cli.Exit("pop3d: "+err.Error(), status.OSErr)
	}
	if opts.TLS == nil && slices.ContainsFunc(listeners, func(l daemon.Listener) bool { return l.TLS }) {
		return cli.Exit("pop3d: pop3s_listen needs tls_cert and tls_key", status.Config)
	}
	err = daemon.SpawnSelf(listeners, func(l daemon.Listener) []string {
		args := []string{"-i"}
		if l.TLS {
			args = append(args, "--tls")
		}
		if conf := c.String("C"); conf != "" {
			args = append(args, "-C", conf)
		}
		return args
	}, "pop3", "-ERR [SYS/TEMP] too many sessions, try again later\r\n")
	if err != nil {
		return cli.Exit("pop3d: "+err.Error(), status.OSErr)
	}
	return nil
}
