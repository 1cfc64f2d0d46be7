package daemon

import (
	"crypto/tls"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/maillog"
	"yubin/internal/status"
)

// Mailbox is the command of a mailbox server (pop3d, imapd), which differ
// only in their protocol: the command line, the configuration, the users
// and TLS are read the same way, and clients met as Reader says.
type Mailbox struct {
	Name    string // the program: "imapd"
	Usage   string // "the yubin IMAP server"
	TLSPort string // the implicit-TLS port, for --tls's help: "993"
	Proto   string // Reader.Proto
	TLSName string // Reader.TLSName
	Busy    string // Reader.Busy
	// Listen picks the plain and implicit-TLS listen addresses.
	Listen func(cfg *config.Config) (plain, implicit []string)
	// Session returns what serves one session (Reader.Serve), given the
	// configuration, its users and its TLS (nil when none).
	Session func(cfg *config.Config, users *auth.Directory, tls *tls.Config) func(conn net.Conn, implicitTLS bool) error
}

// Main runs the command with os.Args and exits with its sysexits status.
func (m Mailbox) Main() {
	app := &cli.App{
		Name:      m.Name,
		Usage:     m.Usage,
		UsageText: m.Name + " [-C file] [-i] [--tls]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "C", Usage: "configuration `file`"},
			&cli.BoolFlag{Name: "i", Usage: "serve one session on stdin and stdout (inetd, systemd Accept=yes)"},
			&cli.BoolFlag{Name: "tls", Usage: "with -i: the connection starts with TLS (port " + m.TLSPort + ")"},
		},
		HideHelpCommand: true,
		Action:          m.run,
	}
	if err := app.Run(os.Args); err != nil {
		os.Exit(status.Usage) // cli has printed the usage error
	}
}

func (m Mailbox) run(c *cli.Context) error {
	fail := func(msg string, code int) error { return cli.Exit(m.Name+": "+msg, code) }
	if c.NArg() > 0 {
		return fail("unexpected argument "+c.Args().First(), status.Usage)
	}
	// Each file is stamped before it is read, for a spare's Fresh.
	stamps := stampFiles(config.Path(c.String("C")))
	cfg, err := config.Load(c.String("C"))
	if err != nil {
		return fail(err.Error(), status.Config)
	}
	stamps = append(stamps, stampFiles(cfg.UsersFile, cfg.TLSCert, cfg.TLSKey)...)
	users, err := auth.Open(cfg.UsersFile, cfg.MailOwner)
	if err != nil {
		return fail("users_file "+err.Error(), status.Config)
	}
	tlsConfig, err := TLSConfig(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return fail(err.Error(), status.Config)
	}
	maillog.Open(m.Name, cfg.MaillogFile)
	plain, implicit := m.Listen(cfg)
	r := &Reader{Proto: m.Proto, Plain: plain, Implicit: implicit, TLSName: m.TLSName, Busy: m.Busy, TLS: tlsConfig,
		Serve: m.Session(cfg, users, tlsConfig), Fresh: func() bool { return unchanged(stamps) }}
	if code, err := r.Run(c.Bool("i"), c.Bool("tls"), c.String("C")); err != nil {
		return fail(err.Error(), code)
	}
	return nil
}
