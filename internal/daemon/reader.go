package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"

	"yubin/internal/status"
)

// TLSConfig loads the certificate and key named in yubin.conf (tls_cert,
// tls_key); nil, nil when none is configured.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls_cert: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Reader is how a mailbox server (pop3d, imapd) meets its clients: one
// session on stdin (-i, or a socket there: inetd, systemd Accept=yes), or
// listeners (systemd Accept=no, or the configured addresses) with each
// session in a child "NAME -i [--tls] [-C conf]" (Spawn), since a session
// becomes its user for good.
type Reader struct {
	Proto    string      // the service in the log: "pop3"
	Plain    []string    // listen addresses (pop3_listen)
	Implicit []string    // implicit-TLS listen addresses (pop3s_listen)
	TLSName  string      // systemd FileDescriptorName of the TLS socket: "pop3s"
	Busy     string      // the reply, with CRLF, to a client over the session limit
	TLS      *tls.Config // nil: no TLS configured
	// Serve serves one session on conn, starting with TLS when implicitTLS.
	Serve func(conn net.Conn, implicitTLS bool) error
	// Fresh reports whether the files read at start are unchanged (a
	// spare session's process that finds them changed starts again);
	// nil: always.
	Fresh func() bool
}

// Run serves as the command line says (oneSession: -i; tlsFlag: --tls;
// conf: -C) and returns the sysexits status for an error.
func (r *Reader) Run(oneSession, tlsFlag bool, conf string) (int, error) {
	if err := awaitSession(r.Fresh); errors.Is(err, errNoSession) {
		return status.OK, nil
	} else if err != nil {
		return status.OSErr, err
	}
	if oneSession || IsSocket(os.Stdin) {
		conn, err := StdioConn(os.Stdin, os.Stdout)
		if err != nil {
			return status.OSErr, fmt.Errorf("stdin: %w", err)
		}
		implicit := tlsFlag || ImplicitTLS(conn.LocalAddr(), r.Implicit)
		if implicit && r.TLS == nil {
			return status.Config, errors.New("--tls or an implicit-TLS listen address needs tls_cert and tls_key")
		}
		if err := r.Serve(conn, implicit); err != nil {
			return status.IOErr, err
		}
		return status.OK, nil
	}
	// Run as root, this process keeps root only to start the sessions.
	listeners, err := Listen(r.Plain, r.Implicit, r.TLSName)
	if err != nil {
		return status.OSErr, err
	}
	if r.TLS == nil && slices.ContainsFunc(listeners, func(l Listener) bool { return l.TLS }) {
		return status.Config, errors.New("an implicit-TLS listen address needs tls_cert and tls_key")
	}
	err = SpawnSelf(listeners, func(l Listener) []string {
		args := []string{"-i"}
		if l.TLS {
			args = append(args, "--tls")
		}
		if conf != "" {
			args = append(args, "-C", conf)
		}
		return args
	}, r.Proto, r.Busy)
	if err != nil {
		return status.OSErr, err
	}
	return status.OK, nil
}
