// Command pop3d is yubin's POP3 server. Usage: man/pop3d.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir rules: internal/pop3.
package main

import (
	"context"
	"net"
	"os"
	"runtime/debug"

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
	if opts.TLS, err = daemon.TLSConfig(cfg.TLSCert, cfg.TLSKey); err != nil {
		return cli.Exit("pop3d: "+err.Error(), status.Config)
	}
	maillog.Open("pop3d", cfg.MaillogFile)
	r := &daemon.Reader{
		Proto: "pop3", Plain: cfg.POP3Listen, Implicit: cfg.POP3SListen, TLSName: "pop3s",
		Busy: "-ERR [SYS/TEMP] too many sessions, try again later\r\n", TLS: opts.TLS,
		Serve: func(conn net.Conn, implicitTLS bool) error {
			// A session's live heap is its message list: small, so the
			// default GC would run every few RETRs (bench/README.md, pop3).
			debug.SetGCPercent(400)
			opts.ImplicitTLS = implicitTLS
			return pop3.Serve(context.Background(), opts, conn)
		},
	}
	if code, err := r.Run(c.Bool("i"), c.Bool("tls"), c.String("C")); err != nil {
		return cli.Exit("pop3d: "+err.Error(), code)
	}
	return nil
}
