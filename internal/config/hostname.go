package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// hostsFile is where a short hostname is qualified. There are no DNS
// queries: sendmail reads the configuration on every invocation, and the
// network may be down or closed.
const hostsFile = "/etc/hosts"

// defaultHostname is the host's fully qualified name: os.Hostname, and if
// that has no dot, the first name of an /etc/hosts line listing it, when that
// has a dot. Failing that, the short name.
func defaultHostname() (string, error) {
	name, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cannot find this host's name (set hostname): %w", err)
	}
	if strings.Contains(name, ".") {
		return name, nil
	}
	f, err := os.Open(hostsFile)
	if err != nil {
		return name, nil // no hosts file: the short name will do
	}
	defer f.Close()
	if fqdn := hostsFQDN(f, name); fqdn != "" {
		return fqdn, nil
	}
	return name, nil
}

// hostsFQDN returns the canonical (first) name of the first hosts(5) line
// that lists name and whose canonical name has a dot, or "".
func hostsFQDN(hosts io.Reader, name string) string {
	sc := bufio.NewScanner(hosts)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[1], ".") {
			continue
		}
		for _, alias := range f[1:] {
			if strings.EqualFold(alias, name) {
				return f[1]
			}
		}
	}
	return ""
}
