package relay

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ReadAuthFile reads relay_auth_file, in the format of Postfix's
// sasl_passwd:
//
//	# comment
//	[smtp.example.com]:587   user@example.com:secret
//
// one "destination user:password" per line; the line whose destination is
// relayHost as written in yubin.conf is used. A line of one field,
// "user:password", applies to any relay_host. The password runs to the end
// of the line and may contain ':'. It returns nil when no line matches.
func ReadAuthFile(path, relayHost string) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var any *Credentials
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		dest, login, two := strings.Cut(line, " ")
		if !two {
			dest, login, two = strings.Cut(line, "\t")
		}
		if !two {
			dest, login = "", line
		}
		user, pass, ok := strings.Cut(strings.TrimSpace(login), ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s:%d: not \"destination user:password\"", path, n)
		}
		c := &Credentials{User: user, Password: pass}
		switch {
		case dest == relayHost:
			return c, nil
		case dest == "" && any == nil:
			any = c
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return any, nil
}
