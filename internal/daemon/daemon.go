// Package daemon is how yubin's servers meet their clients: one session on
// standard input and output (inetd "nowait", systemd Accept=yes, or a local
// pipe: StdioConn), or listening sockets (systemd's, Accept=no, or bound
// from the configured addresses: Listen) whose sessions each run in a child
// process (Spawn), because a session becomes its logged-in user for good
// (BecomeUser).
package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Listener is a listening socket and whether its sessions start with TLS.
type Listener struct {
	net.Listener
	TLS bool
}

// Listen returns systemd's sockets when LISTEN_PID is this process (a socket
// named tlsName by FileDescriptorName=, or on the port of an implicitTLS
// address, starts with TLS), otherwise binds the plain and implicitTLS
// addresses. No address at all is an error.
func Listen(plain, implicitTLS []string, tlsName string) ([]Listener, error) {
	var ls []Listener
	if pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID")); pid == os.Getpid() {
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
		for i := range n {
			f := os.NewFile(uintptr(3+i), "systemd socket")
			l, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("systemd socket %d: %w", 3+i, err)
			}
			tls := i < len(names) && names[i] == tlsName || ImplicitTLS(l.Addr(), implicitTLS)
			ls = append(ls, Listener{l, tls})
		}
		return ls, nil
	}
	for _, set := range []struct {
		addrs []string
		tls   bool
	}{{plain, false}, {implicitTLS, true}} {
		for _, a := range set.addrs {
			l, err := net.Listen("tcp", a)
			if err != nil {
				for _, done := range ls {
					done.Close()
				}
				return nil, err
			}
			ls = append(ls, Listener{l, set.tls})
		}
	}
	if len(ls) == 0 {
		return nil, fmt.Errorf("no listen address configured")
	}
	return ls, nil
}

// ImplicitTLS reports whether addr's port is that of one of the implicitTLS
// addresses (a session handed over by inetd or systemd on the TLS port).
func ImplicitTLS(addr net.Addr, implicitTLS []string) bool {
	a, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	for _, s := range implicitTLS {
		if _, port, err := net.SplitHostPort(s); err == nil && port == strconv.Itoa(a.Port) {
			return true
		}
	}
	return false
}
