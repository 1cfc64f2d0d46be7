// Command mailq lists the mail queue (the same as sendmail -bp).
// Usage and output: man/mailq.1; configuration: man/yubin.conf.5.
package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"yubin/internal/config"
	"yubin/internal/mailq"
	"yubin/internal/queue"
	"yubin/internal/status"
)

func main() {
	app := &cli.App{
		Name:      "mailq",
		Usage:     "list the mail queue",
		UsageText: "mailq [-C file] [--json]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per message, as postqueue -j"},
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit("mailq: unexpected argument "+c.Args().First(), status.Usage)
			}
			cfg, err := config.Load(c.String("C"))
			if err != nil {
				return cli.Exit("mailq: "+err.Error(), status.Config)
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
