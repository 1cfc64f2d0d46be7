// Command imapd is yubin's IMAP server. Usage: man/imapd.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir store: internal/imapstore.
package main

import (
	"context"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/daemon"
	"yubin/internal/imapstore"
	"yubin/internal/maillog"
	"yubin/internal/status"
)

func main() {
	app := &cli.App{
		Name:      "imapd",
		Usage:     "the yubin IMAP server",
		UsageText: "imapd [-C file] [-i] [--tls]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "i", Usage: "serve one session on stdin and stdout (inetd, systemd Accept=yes)"},
			&cli.BoolFlag{Name: "tls", Usage: "with -i: the connection starts with TLS (port 993)"},
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
		return cli.Exit("imapd: unexpected argument "+c.Args().First(), status.Usage)
	}
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return cli.Exit("imapd: "+err.Error(), status.Config)
	}
	users, err := auth.Open(cfg.UsersFile, cfg.MailOwner)
	if err != nil {
		return cli.Exit("imapd: users_file "+err.Error(), status.Config)
	}
	opts := imapstore.Options{Hostname: cfg.Hostname, MailDir: cfg.MailDir, Users: users, PlaintextAuth: cfg.PlaintextAuth}
	if opts.TLS, err = daemon.TLSConfig(cfg.TLSCert, cfg.TLSKey); err != nil {
		return cli.Exit("imapd: "+err.Error(), status.Config)
	}
	maillog.Open("imapd", cfg.MaillogFile)
	r := &daemon.Reader{
		Proto: "imap", Plain: cfg.IMAPListen, Implicit: cfg.IMAPSListen, TLSName: "imaps",
		Busy: "* BYE [UNAVAILABLE] too many sessions, try again later\r\n", TLS: opts.TLS,
		Serve: func(conn net.Conn, implicitTLS bool) error {
			opts.ImplicitTLS = implicitTLS
			return imapstore.Serve(context.Background(), opts, conn)
		},
	}
	if code, err := r.Run(c.Bool("i"), c.Bool("tls"), c.String("C")); err != nil {
		return cli.Exit("imapd: "+err.Error(), code)
	}
	return nil
}
