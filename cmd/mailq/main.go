// Command mailq lists the mail queue (the same as sendmail -bp).
// Usage and output: man/mailq.1; configuration: man/yubin.conf.5.
package main

import (
	"os"
	"os/user"

	"github.com/urfave/cli/v2"

	"yubin/internal/config"
	"yubin/internal/mailq"
	"yubin/internal/queue"
	"yubin/internal/status"
)

// privileged: root, or the mail owner (by the real uid: mailq is setgid).
func privileged(owner string) bool {
	if os.Getuid() == 0 {
		return true
	}
	u, err := user.Current()
	return err == nil && u.Username == owner
}

func main() {
	app := &cli.App{
		Name:      "mailq",
		Usage:     "list the mail queue",
		UsageText: "mailq [-C file] [--json]\n   mailq [-C file] --hold|--release|--delete|--requeue ID...|ALL",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per message, as postqueue -j"},
			&cli.BoolFlag{Name: "hold", Usage: "put the messages named on hold (postsuper -h)"},
			&cli.BoolFlag{Name: "release", Usage: "take the messages named off hold (postsuper -H)"},
			&cli.BoolFlag{Name: "delete", Usage: "remove the messages named, undelivered (postsuper -d)"},
			&cli.BoolFlag{Name: "requeue", Usage: "make the deferred recipients of the messages named due now (postsuper -r)"},
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			var op mailq.Op
			for _, o := range []mailq.Op{mailq.Hold, mailq.Release, mailq.Delete, mailq.Requeue} {
				if c.Bool(string(o)) {
					if op != "" {
						return cli.Exit("mailq: --"+string(op)+" and --"+string(o)+" are exclusive", status.Usage)
					}
					op = o
				}
			}
			if op == "" && c.NArg() > 0 {
				return cli.Exit("mailq: unexpected argument "+c.Args().First(), status.Usage)
			}
			if op != "" && c.NArg() == 0 {
				return cli.Exit("mailq: --"+string(op)+" needs queue IDs (or ALL)", status.Usage)
			}
			cfg, err := config.Load(c.String("C"))
			if err != nil {
				return cli.Exit("mailq: "+err.Error(), status.Config)
			}
			if op != "" {
				// mailq is setgid: the group lets anyone read envelopes, but
				// only root and mail_owner may change the queue.
				if !privileged(cfg.MailOwner) {
					return cli.Exit("mailq: --"+string(op)+": only root or "+cfg.MailOwner+" may change the queue", status.NoPerm)
				}
				if _, failed := mailq.Apply(os.Stdout, os.Stderr, queue.New(cfg.QueueDir), op, c.Args().Slice()); failed {
					return cli.Exit("", status.DataErr)
				}
				return nil
			}
			if err := mailq.Print(os.Stdout, os.Stderr, queue.New(cfg.QueueDir), c.Bool("json")); err != nil {
				return cli.Exit("mailq: "+err.Error(), status.TempFail)
			}
			return nil
		},
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(status.Usage) // cli has printed the usage error
	}
}
