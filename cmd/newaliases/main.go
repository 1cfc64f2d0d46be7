// Command newaliases checks the aliases file and compiles it (sendmail -bi).
// Usage and output: man/newaliases.8; the file: man/aliases.5; configuration: man/yubin.conf.5.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"yubin/internal/aliases"
	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/status"
)

func main() {
	app := &cli.App{
		Name:      "newaliases",
		Usage:     "check the aliases file and rebuild its database",
		UsageText: "newaliases [-C file]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cli.Exit("newaliases: unexpected argument "+c.Args().First(), status.Usage)
			}
			cfg, err := config.Load(c.String("C"))
			if err != nil {
				return cli.Exit("newaliases: "+err.Error(), status.Config)
			}
			return run(cfg)
		},
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(status.Usage) // cli has printed the usage error
	}
}

func run(cfg *config.Config) error {
	if cfg.Aliases == "" {
		return cli.Exit("newaliases: no aliases file: aliases is empty in the configuration", status.Config)
	}
	f, bad, err := aliases.ReadFile(cfg.Aliases)
	switch {
	case errors.Is(err, aliases.ErrUnsafeFile):
		return cli.Exit("newaliases: "+err.Error(), status.Config)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return cli.Exit("newaliases: "+err.Error(), status.NoInput)
	case err != nil:
		return cli.Exit("newaliases: "+err.Error(), status.IOErr)
	}
	if len(bad) > 0 {
		for _, e := range bad {
			fmt.Fprintf(os.Stderr, "newaliases: %v\n", e)
		}
		return cli.Exit(fmt.Sprintf("newaliases: %s: %d bad lines: database not rebuilt", cfg.Aliases, len(bad)), status.DataErr)
	}
	users, err := auth.Open(cfg.UsersFile, cfg.MailOwner)
	if err != nil {
		return cli.Exit("newaliases: users_file: "+err.Error(), status.Config)
	}
	for _, w := range f.Check(users, cfg.LocalDomains) {
		fmt.Fprintf(os.Stderr, "newaliases: warning: %v\n", w)
	}
	if err := f.WriteDB(aliases.DBPath(cfg.Aliases)); err != nil {
		return cli.Exit("newaliases: "+err.Error(), status.TempFail)
	}
	// sendmail's words, which scripts and people know.
	n, longest, total := f.Stats()
	fmt.Printf("%s: %d aliases, longest %d bytes, %d bytes total\n", cfg.Aliases, n, longest, total)
	return nil
}
