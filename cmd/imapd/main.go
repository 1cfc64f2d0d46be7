// Command imapd is yubin's IMAP server. Usage: man/imapd.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir store: internal/imapstore.
package main

import (
	"context"
	"crypto/tls"
	"os"
	"slices"

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
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return cli.Exit("imapd: tls_cert: "+err.Error(), status.Config)
		}
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	maillog.Syslog("yubin/imapd")

	// One session: -i, or stdin is a connection (inetd, Accept=yes).
	if c.Bool("i") || daemon.IsSocket(os.Stdin) {
		conn, err := daemon.StdioConn(os.Stdin, os.Stdout)
		if err != nil {
			return cli.Exit("imapd: stdin: "+err.Error(), status.OSErr)
		}
		opts.ImplicitTLS = c.Bool("tls") || daemon.ImplicitTLS(conn.LocalAddr(), cfg.IMAPSListen)
		if opts.ImplicitTLS && opts.TLS == nil {
			return cli.Exit("imapd: --tls or imaps_listen needs tls_cert and tls_key", status.Config)
		}
		if err := imapstore.Serve(context.Background(), opts, conn); err != nil {
			return cli.Exit("imapd: "+err.Error(), status.IOErr)
		}
		return nil
	}

	// A listener: systemd's sockets (Accept=no), else imap_listen and
	// imaps_listen. Each session runs in a child "imapd -i"
	// (internal/imapstore); run as root, this process keeps root only to
	// start them.
	listeners, err := daemon.Listen(cfg.IMAPListen, cfg.IMAPSListen, "imaps")
	if err != nil {
		return cli.Exit("imapd: "+err.Error(), status.OSErr)
	}
	if opts.TLS == nil && slices.ContainsFunc(listeners, func(l daemon.Listener) bool { return l.TLS }) {
		return cli.Exit("imapd: imaps_listen needs tls_cert and tls_key", status.Config)
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
	}, "imap", "* BYE [UNAVAILABLE] too many sessions, try again later\r\n")
	if err != nil {
		return cli.Exit("imapd: "+err.Error(), status.OSErr)
	}
	return nil
}
