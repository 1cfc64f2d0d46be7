// Command smtpd is yubin's SMTP server. Usage: man/smtpd.8; configuration:
// man/yubin.conf.5. This version serves one session on stdin and stdout (-i).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"yubin/internal/config"
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
		UsageText: "smtpd -i [-C file]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "i", Usage: "serve one session on stdin and stdout (inetd, sendmail -bs)"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(status.Usage) // cli has printed the usage error
	}
}

func run(c *cli.Context) error {
	if !c.Bool("i") || c.NArg() > 0 {
		return cli.Exit("smtpd: only -i (one session on stdin and stdout) in this version", status.Usage)
	}
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return cli.Exit("smtpd: "+err.Error(), status.Config)
	}
	opts := smtpserver.Options{
		Hostname:        cfg.Hostname,
		Queue:           queue.New(cfg.QueueDir),
		MaxMessageBytes: cfg.MessageSizeLimit,
		LocalDomains:    cfg.LocalDomains,
	}
	maillog.Syslog("yubin/smtpd")
	ctx := context.Background()
	// inetd hands us a TCP connection: a network client. Anything else
	// (a pipe, a terminal, sendmail -bs's socket pair) is a local user
	// submitting mail, known by the real uid.
	switch peer, _ := syscall.Getpeername(0); peer.(type) {
	case *syscall.SockaddrInet4, *syscall.SockaddrInet6:
		conn, err := net.FileConn(os.Stdin)
		if err != nil {
			return exit(err)
		}
		return exit(smtpserver.ServeConn(ctx, opts, conn))
	}
	u := submit.CurrentUser()
	opts.Local = &smtpserver.LocalUser{Name: u.Name, UID: u.UID}
	return exit(smtpserver.ServeStdio(ctx, opts, os.Stdin, os.Stdout))
}

func exit(err error) error {
	if err != nil {
		return cli.Exit(fmt.Sprintf("smtpd: %v", err), status.IOErr)
	}
	return nil
}
