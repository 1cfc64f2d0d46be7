// Command deliver is yubin's local delivery agent: it stores one message from
// stdin in each named user's Maildir.
// Usage and exit status: man/deliver.8; configuration: man/yubin.conf.5.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"yubin/internal/address"
	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/mailbox"
	"yubin/internal/maillog"
	"yubin/internal/status"
)

func main() {
	app := &cli.App{
		Name:      "deliver",
		Usage:     "deliver a message from stdin into local users' Maildirs",
		UsageText: "deliver [-C file] [-f sender] [-a original-recipient] [-s] user[@domain]...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.StringFlag{Name: "f", Usage: "envelope `sender`, for Return-Path"},
			&cli.StringFlag{Name: "a", Usage: "original `recipient`, for X-Original-To"},
			&cli.BoolFlag{Name: "s", Usage: "print user<TAB>exit status<TAB>text for every user"},
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			if code := run(c); code != status.OK {
				return cli.Exit("", code) // run has said why
			}
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(status.Usage) // cli has printed the usage error
	}
}

func run(c *cli.Context) int {
	rcpts := c.Args().Slice()
	report := &report{status: c.Bool("s")}
	if len(rcpts) == 0 {
		fmt.Fprintln(os.Stderr, "deliver: no user named (usage: "+c.App.UsageText+")")
		return status.Usage
	}
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return report.all(rcpts, status.Config, err)
	}
	users, err := auth.Open(cfg.UsersFile, cfg.MailOwner)
	if err != nil {
		code := status.Config // a line of users_file is wrong
		if errors.As(err, new(*fs.PathError)) {
			code = status.TempFail // it cannot be read now
		}
		return report.all(rcpts, code, fmt.Errorf("users_file: %w", err))
	}
	maillog.Open("deliver", cfg.MaillogFile)

	msg, err := mailbox.ReadMessage(os.Stdin, cfg.MessageSizeLimit)
	if err != nil {
		return report.all(rcpts, mailbox.Status(err), err)
	}
	defer msg.Close()
	if c.IsSet("f") {
		msg.Sender = mailbox.Unbracket(c.String("f"))
	}
	if c.IsSet("a") {
		msg.OrigRcpt = mailbox.Unbracket(c.String("a"))
	}

	d := mailbox.New(mailbox.Options{MailDir: cfg.MailDir, Hostname: cfg.Hostname, Users: users})
	code := status.OK
	for _, rcpt := range rcpts {
		path, err := d.Deliver(msg, rcpt)
		if err != nil {
			fmt.Fprintf(os.Stderr, "deliver: %s: %s\n", rcpt, oneLine(err.Error()))
			if code == status.OK {
				code = mailbox.Status(err)
			}
			report.line(rcpt, mailbox.Status(err), err.Error())
			continue
		}
		// The runner logs its own line for each delivery; deliver(8) logs here.
		dir := filepath.Dir(filepath.Dir(path))
		var size int64
		if fi, err := os.Stat(path); err == nil {
			size = fi.Size()
		}
		maillog.Delivered(msg.ID, msg.Sender, address.Qualify(rcpt, cfg.Hostname), msg.OrigRcpt, dir, size)
		report.line(rcpt, status.OK, "delivered to "+dir)
	}
	return code
}

// report prints -s's status lines.
type report struct{ status bool }

func (r *report) line(rcpt string, code int, text string) {
	if r.status {
		fmt.Printf("%s\t%d\t%s\n", rcpt, code, strings.ReplaceAll(oneLine(text), "\t", " "))
	}
}

// all reports one error that fails every recipient.
func (r *report) all(rcpts []string, code int, err error) int {
	fmt.Fprintln(os.Stderr, "deliver: "+oneLine(err.Error()))
	for _, rcpt := range rcpts {
		r.line(rcpt, code, err.Error())
	}
	return code
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
