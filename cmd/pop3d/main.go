// Command pop3d is yubin's POP3 server. Usage: man/pop3d.8; configuration:
// man/yubin.conf.5. The protocol and the Maildir rules: internal/pop3.
package main

import (
	"context"
	"crypto/tls"
	"net"
	"runtime/debug"

	"yubin/internal/auth"
	"yubin/internal/config"
	"yubin/internal/daemon"
	"yubin/internal/pop3"
)

func main() {
	daemon.Mailbox{
		Name: "pop3d", Usage: "the yubin POP3 server", TLSPort: "995",
		Proto: "pop3", TLSName: "pop3s", Busy: "-ERR [SYS/TEMP] too many sessions, try again later\r\n",
		Listen: func(cfg *config.Config) ([]string, []string) { return cfg.POP3Listen, cfg.POP3SListen },
		Session: func(cfg *config.Config, users *auth.Directory, tls *tls.Config) func(net.Conn, bool) error {
			opts := pop3.Options{Hostname: cfg.Hostname, MailDir: cfg.MailDir, Users: users, PlaintextAuth: cfg.PlaintextAuth, TLS: tls}
			return func(conn net.Conn, implicitTLS bool) error {
				// A session's live heap is its message list: small, so the
				// default GC would run every few RETRs (bench/README.md, pop3).
				debug.SetGCPercent(400)
				opts.ImplicitTLS = implicitTLS
				return pop3.Serve(context.Background(), opts, conn)
			}
		},
	}.Main()
}
