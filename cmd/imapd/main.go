// Command imapd is yubin's IMAP server. Usage: man/imapd.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir store: internal/imapstore.
package main

import (
	"context"
	"crypto/tls"
	"net"

	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/daemon"
	"yubin/internal/imapstore"
)

func main() {
	daemon.Mailbox{
		Name: "imapd", Usage: "the yubin IMAP server", TLSPort: "993",
		Proto: "imap", TLSName: "imaps", Busy: "* BYE [UNAVAILABLE] too many sessions, try again later\r\n",
		Listen: func(cfg *config.Config) ([]string, []string) { return cfg.IMAPListen, cfg.IMAPSListen },
		Session: func(cfg *config.Config, users *auth.Directory, tls *tls.Config) func(net.Conn, bool) error {
			opts := imapstore.Options{Hostname: cfg.Hostname, MailDir: cfg.MailDir, Users: users, PlaintextAuth: cfg.PlaintextAuth, TLS: tls}
			return func(conn net.Conn, implicitTLS bool) error {
				opts.ImplicitTLS = implicitTLS
				return imapstore.Serve(context.Background(), opts, conn)
			}
		},
	}.Main()
}
