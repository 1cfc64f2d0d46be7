package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaults is what an empty file gives.
func defaults(t *testing.T) *Config {
	t.Helper()
	host, err := defaultHostname()
	if err != nil {
		t.Fatalf("defaultHostname: %v", err)
	}
	return &Config{
		File:             "yubin.conf",
		Hostname:         host,
		LocalDomains:     dedup([]string{strings.ToLower(host), "localhost"}),
		QueueDir:         "/var/spool/yubin",
		MailDir:          "~/Maildir",
		Aliases:          "/etc/aliases",
		SMTPListen:       []string{":25"},
		SubmissionListen: []string{":587"},
		POP3Listen:       []string{":110"},
		IMAPListen:       []string{":143"},
		RelayNetworks:    []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		RemoteSMTPPort:   25,
		MessageSizeLimit: 26214400,
		MailOwner:        "mail",

		SMTPRecipientLimit:        100,
		SMTPErrorLimit:            20,
		SMTPClientConnectionLimit: 50,
		SMTPTimeout:               300 * time.Second,
		SMTPDataTimeout:           600 * time.Second,

		QueueRunDelay:          300 * time.Second,
		MinBackoffTime:         300 * time.Second,
		MaxBackoffTime:         time.Hour,
		MaxQueueLifetime:       5 * 24 * time.Hour,
		DelayWarningTime:       4 * time.Hour,
		RelayConnectTimeout:    30 * time.Second,
		RelayTimeout:           300 * time.Second,
		RelayTLSVerify:         true,
		QueueConcurrency:       10,
		DestinationConcurrency: 20,
		BounceLimit:            100,

		RelayConnectionCacheTime: 2 * time.Second,
	}
}

func dedup(s []string) []string {
	if s[0] == s[1] {
		return s[:1]
	}
	return s
}

func TestParseDefaults(t *testing.T) {
	want := defaults(t)
	for name, conf := range map[string]string{
		"empty":                  "",
		"comments and blanks":    "# nothing here\n\n   \n\t# indented comment\n",
		"every default, written": writtenDefaults(),
	} {
		got, err := Parse("yubin.conf", strings.NewReader(conf))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
}

// writtenDefaults is a file setting every key to its default text.
func writtenDefaults() string {
	var b strings.Builder
	for _, k := range keys {
		if k.dynamic == nil {
			b.WriteString(k.name + " = " + k.def + "\n")
		}
	}
	return b.String()
}

func TestKeyTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.name] {
			t.Errorf("%s: twice in the table", k.name)
		}
		seen[k.name] = true
		if k.set == nil {
			t.Errorf("%s: no set function", k.name)
		}
		if k.doc == "" || strings.Contains(k.doc, "\n") || !strings.HasSuffix(k.doc, ".") || len("# "+k.doc) > 79 {
			t.Errorf("%s: doc %q is not one sentence on one line of the sample", k.name, k.doc)
		}
	}
}

func TestParse(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		name    string
		conf    string
		field   func(*Config) any
		want    any
		wantErr string // the whole message; "" when the file is good
	}{
		// syntax
		{name: "whitespace trimmed", conf: "queue_dir\t=   /q  \r\n",
			field: func(c *Config) any { return c.QueueDir }, want: "/q"},
		{name: "no spaces", conf: "queue_dir=/q",
			field: func(c *Config) any { return c.QueueDir }, want: "/q"},
		{name: "value holds =", conf: "relay_auth_file = /etc/a=b",
			field: func(c *Config) any { return c.RelayAuthFile }, want: "/etc/a=b"},
		{name: "value holds #", conf: "relay_auth_file = /etc/a#b",
			field: func(c *Config) any { return c.RelayAuthFile }, want: "/etc/a#b"},
		{name: "comment between", conf: "# one\nqueue_dir = /q\n  # two\naliases = /a\n",
			field: func(c *Config) any { return c.QueueDir + " " + c.Aliases }, want: "/q /a"},
		{name: "continuation", conf: "local_domains = a.example,\n  b.example\n\tc.example, \n",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"a.example", "b.example", "c.example"}},
		{name: "continuation joins with one space", conf: "mail_dir = /m \n   x   \n",
			field: func(c *Config) any { return c.MailDir }, want: "/m x"},
		{name: "continuation over a comment", conf: "local_domains = a.example\n# between\n  b.example\n",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"a.example", "b.example"}},
		{name: "continuation of an empty value", conf: "local_domains =\n  a.example\n",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"a.example"}},
		{name: "duplicate key, later wins", conf: "queue_dir = /a\nqueue_dir = /b\n",
			field: func(c *Config) any { return c.QueueDir }, want: "/b"},
		{name: "continuation goes to the later duplicate", conf: "local_domains = a.example\nlocal_domains = b.example\n c.example",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"b.example", "c.example"}},
		{name: "relative paths as they are", conf: "users_file = users\naliases = ./aliases\nqueue_dir = q",
			field: func(c *Config) any { return c.UsersFile + " " + c.Aliases + " " + c.QueueDir }, want: "users ./aliases q"},

		// expansion
		{name: "$name", conf: "queue_dir = /q\naliases = $queue_dir/aliases",
			field: func(c *Config) any { return c.Aliases }, want: "/q/aliases"},
		{name: "${name}", conf: "queue_dir = /q\naliases = ${queue_dir}aliases",
			field: func(c *Config) any { return c.Aliases }, want: "/qaliases"},
		{name: "$name before its key", conf: "aliases = $queue_dir/aliases\nqueue_dir = /q",
			field: func(c *Config) any { return c.Aliases }, want: "/q/aliases"},
		{name: "$name of a default", conf: "aliases = $queue_dir/aliases",
			field: func(c *Config) any { return c.Aliases }, want: "/var/spool/yubin/aliases"},
		{name: "$name of the later duplicate", conf: "queue_dir = /a\naliases = $queue_dir\nqueue_dir = /b",
			field: func(c *Config) any { return c.Aliases }, want: "/b"},
		{name: "$name chain", conf: "users_file = $aliases.users\naliases = $queue_dir/aliases\nqueue_dir = /q",
			field: func(c *Config) any { return c.UsersFile }, want: "/q/aliases.users"},
		{name: "$$", conf: "relay_auth_file = /a$$b$${c}",
			field: func(c *Config) any { return c.RelayAuthFile }, want: "/a$b${c}"},
		{name: "local_domains default follows hostname", conf: "hostname = Mail.Example.ORG",
			field: func(c *Config) any { return []any{c.Hostname, c.LocalDomains} }, want: []any{"Mail.Example.ORG", []string{"mail.example.org", "localhost"}}},
		{name: "local_domains default follows the later hostname", conf: "hostname = a.example\nhostname = b.example",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"b.example", "localhost"}},
		{name: "local_domains extends the default", conf: "hostname = h.example\nlocal_domains = $hostname example.org",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"h.example", "example.org"}},

		// hostname and local_domains
		{name: "hostname localhost", conf: "hostname = localhost",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"localhost"}},
		{name: "local_domains lower-cased, deduplicated", conf: "local_domains = Example.ORG. example.org,,LOCALHOST",
			field: func(c *Config) any { return c.LocalDomains }, want: []string{"example.org", "localhost"}},
		{name: "local_domains empty", conf: "local_domains =",
			field: func(c *Config) any { return c.LocalDomains }, want: []string(nil)},
		{name: "bad hostname", conf: "hostname = mail example.org",
			wantErr: `yubin.conf:1: hostname: "mail example.org" is not a host name`},
		{name: "hostname empty", conf: "hostname =",
			wantErr: `yubin.conf:1: hostname: "" is not a host name`},
		{name: "hostname with empty label", conf: "hostname = a..example",
			wantErr: `yubin.conf:1: hostname: "a..example" is not a host name`},
		{name: "bad local domain", conf: "local_domains = example.org user@example.net",
			wantErr: `yubin.conf:1: local_domains: "user@example.net" is not a domain name`},

		// paths
		{name: "queue_dir empty", conf: "\nqueue_dir =",
			wantErr: `yubin.conf:2: queue_dir: must not be empty`},
		{name: "optional paths empty", conf: "aliases =\nusers_file =",
			field: func(c *Config) any { return c.Aliases + c.UsersFile }, want: ""},
		{name: "mail_dir with %u and %d", conf: "mail_dir = /var/mail/%d/%u/",
			field: func(c *Config) any { return c.MailDir }, want: "/var/mail/%d/%u/"},
		{name: "mail_dir home", conf: "mail_dir = ~",
			field: func(c *Config) any { return c.MailDir }, want: "~"},
		{name: "mail_dir ~ inside", conf: "mail_dir = /m/~x",
			field: func(c *Config) any { return c.MailDir }, want: "/m/~x"},
		{name: "mail_dir ~user", conf: "mail_dir = ~bob/Maildir",
			wantErr: `yubin.conf:1: mail_dir: "~bob/Maildir": a leading "~" must be followed by "/" (~user is not understood)`},
		{name: "mail_dir bad %", conf: "mail_dir = /m/%x",
			wantErr: `yubin.conf:1: mail_dir: "/m/%x": "%x" is neither %u (user) nor %d (domain)`},
		{name: "mail_dir % at end", conf: "mail_dir = /m/%",
			wantErr: `yubin.conf:1: mail_dir: "/m/%": "%" is neither %u (user) nor %d (domain)`},
		{name: "mail_dir empty", conf: "mail_dir =",
			wantErr: `yubin.conf:1: mail_dir: must not be empty`},

		// listen addresses
		{name: "listen list", conf: "smtp_listen = 127.0.0.1:2525, [::1]:2525 localhost:25 :25",
			field: func(c *Config) any { return c.SMTPListen }, want: []string{"127.0.0.1:2525", "[::1]:2525", "localhost:25", ":25"}},
		{name: "listen empty", conf: "submission_listen =\npop3_listen=\nimap_listen = ,",
			field: func(c *Config) any { return [][]string{c.SubmissionListen, c.POP3Listen, c.IMAPListen} }, want: [][]string{nil, nil, nil}},
		{name: "listen without port", conf: "smtp_listen = 127.0.0.1",
			wantErr: `yubin.conf:1: smtp_listen: "127.0.0.1" is not host:port`},
		{name: "listen port 0", conf: "pop3_listen = :0",
			wantErr: `yubin.conf:1: pop3_listen: ":0": "0" is not a port number (1-65535)`},
		{name: "listen service name", conf: "imap_listen = :imap",
			wantErr: `yubin.conf:1: imap_listen: ":imap": "imap" is not a port number (1-65535)`},
		{name: "listen bad host", conf: "submission_listen = a!b:587",
			wantErr: `yubin.conf:1: submission_listen: "a!b:587": "a!b" is neither an IP address nor a host name`},
		{name: "listen unbracketed IPv6", conf: "smtp_listen = ::1:25",
			wantErr: `yubin.conf:1: smtp_listen: "::1:25" is not host:port`},

		// relay_networks
		{name: "relay_networks", conf: "relay_networks = 10.0.0.0/8 192.168.1.7, 2001:db8::/32 ::1 [::1]/128 [fe80::]/10 [2001:db8::5]",
			field: func(c *Config) any { return c.RelayNetworks },
			want: []netip.Prefix{pfx("10.0.0.0/8"), pfx("192.168.1.7/32"), pfx("2001:db8::/32"), pfx("::1/128"),
				pfx("::1/128"), pfx("fe80::/10"), pfx("2001:db8::5/128")}},
		{name: "relay_networks empty", conf: "relay_networks =",
			field: func(c *Config) any { return c.RelayNetworks }, want: []netip.Prefix(nil)},
		{name: "relay_networks host bits", conf: "relay_networks = 10.1.2.3/8",
			wantErr: `yubin.conf:1: relay_networks: "10.1.2.3/8" has host bits set; did you mean "10.0.0.0/8"?`},
		{name: "relay_networks bad address", conf: "relay_networks = 10.0.0.300",
			wantErr: `yubin.conf:1: relay_networks: "10.0.0.300" is not an IP address or prefix`},
		{name: "relay_networks bad length", conf: "relay_networks = 10.0.0.0/33",
			wantErr: `yubin.conf:1: relay_networks: "10.0.0.0/33" is not an IP address or prefix`},
		{name: "relay_networks zone", conf: "relay_networks = fe80::1%eth0",
			wantErr: `yubin.conf:1: relay_networks: "fe80::1%eth0" is not an IP address or prefix`},
		{name: "relay_networks name", conf: "relay_networks = localhost",
			wantErr: `yubin.conf:1: relay_networks: "localhost" is not an IP address or prefix`},

		// relay_tls_policy
		{name: "relay_tls_policy", conf: "relay_tls_policy = Example.COM. verify, .example.org encrypt,\n  mx.example.net none",
			field: func(c *Config) any { return c.RelayTLSPolicy },
			want:  map[string]string{"example.com": "verify", ".example.org": "encrypt", "mx.example.net": "none"}},
		{name: "relay_tls_policy empty", conf: "relay_tls_policy =",
			field: func(c *Config) any { return c.RelayTLSPolicy }, want: map[string]string(nil)},
		{name: "relay_tls_policy bad level", conf: "relay_tls_policy = example.com secure",
			wantErr: `yubin.conf:1: relay_tls_policy: example.com: "secure" is not none, may, encrypt or verify`},
		{name: "relay_tls_policy no level", conf: "relay_tls_policy = example.com, example.org may",
			wantErr: `yubin.conf:1: relay_tls_policy: "example.com" is not "domain level"`},
		{name: "relay_tls_policy bad domain", conf: "relay_tls_policy = exa/mple.com may",
			wantErr: `yubin.conf:1: relay_tls_policy: "exa/mple.com" is not a domain or .domain`},
		{name: "relay_tls_policy twice", conf: "relay_tls_policy = example.com may, EXAMPLE.com verify",
			wantErr: `yubin.conf:1: relay_tls_policy: EXAMPLE.com is listed twice`},

		// relay_host
		{name: "relay_host [host]:port", conf: "relay_host = [smtp.example.org]:587",
			field: func(c *Config) any { return c.RelayHost }, want: "[smtp.example.org]:587"},
		{name: "relay_host [ip]", conf: "relay_host = [192.0.2.1]",
			field: func(c *Config) any { return c.RelayHost }, want: "[192.0.2.1]"},
		{name: "relay_host [ipv6]:port", conf: "relay_host = [2001:db8::1]:25",
			field: func(c *Config) any { return c.RelayHost }, want: "[2001:db8::1]:25"},
		{name: "relay_host host:port", conf: "relay_host = smtp.example.org:2525",
			field: func(c *Config) any { return c.RelayHost }, want: "smtp.example.org:2525"},
		{name: "relay_host host", conf: "relay_host = smtp.example.org",
			field: func(c *Config) any { return c.RelayHost }, want: "smtp.example.org"},
		{name: "relay_host unclosed", conf: "relay_host = [smtp.example.org:25",
			wantErr: `yubin.conf:1: relay_host: "[smtp.example.org:25" is not [host]:port, host:port or host`},
		{name: "relay_host junk after ]", conf: "relay_host = [smtp.example.org]25",
			wantErr: `yubin.conf:1: relay_host: "[smtp.example.org]25" is not [host]:port, host:port or host`},
		{name: "relay_host unbracketed IPv6", conf: "relay_host = 2001:db8::1",
			wantErr: `yubin.conf:1: relay_host: "2001:db8::1" is not [host]:port, host:port or host`},
		{name: "relay_host empty brackets", conf: "relay_host = []:25",
			wantErr: `yubin.conf:1: relay_host: "[]:25" is not [host]:port, host:port or host`},
		{name: "relay_host two hosts", conf: "relay_host = a.example b.example",
			wantErr: `yubin.conf:1: relay_host: "a.example b.example" is not [host]:port, host:port or host`},
		{name: "relay_host bad port", conf: "relay_host = [smtp.example.org]:65536",
			wantErr: `yubin.conf:1: relay_host: "[smtp.example.org]:65536": "65536" is not a port number (1-65535)`},
		{name: "relay_host empty port", conf: "relay_host = smtp.example.org:",
			wantErr: `yubin.conf:1: relay_host: "smtp.example.org:": "" is not a port number (1-65535)`},

		// dns_servers
		{name: "dns_servers", conf: "dns_servers = 127.0.0.1 127.0.0.1:5353, ::1 [::1] [::1]:5353",
			field: func(c *Config) any { return c.DNSServers }, want: []string{"127.0.0.1:53", "127.0.0.1:5353", "[::1]:53", "[::1]:53", "[::1]:5353"}},
		{name: "dns_servers name", conf: "dns_servers = ns.example.org",
			wantErr: `yubin.conf:1: dns_servers: "ns.example.org" is not an IP address with an optional :port`},
		{name: "dns_servers port 0", conf: "dns_servers = 127.0.0.1:0",
			wantErr: `yubin.conf:1: dns_servers: "127.0.0.1:0": port 0 is not a port`},
		{name: "dns_servers half bracket", conf: "dns_servers = [::1",
			wantErr: `yubin.conf:1: dns_servers: "[::1" is not an IP address with an optional :port`},

		// remote_smtp_port
		{name: "remote_smtp_port", conf: "remote_smtp_port = 2525",
			field: func(c *Config) any { return c.RemoteSMTPPort }, want: 2525},
		{name: "remote_smtp_port 65535", conf: "remote_smtp_port = 65535",
			field: func(c *Config) any { return c.RemoteSMTPPort }, want: 65535},
		{name: "remote_smtp_port 0", conf: "remote_smtp_port = 0",
			wantErr: `yubin.conf:1: remote_smtp_port: "0" is not a port number (1-65535)`},
		{name: "remote_smtp_port 65536", conf: "remote_smtp_port = 65536",
			wantErr: `yubin.conf:1: remote_smtp_port: "65536" is not a port number (1-65535)`},
		{name: "remote_smtp_port signed", conf: "remote_smtp_port = +25",
			wantErr: `yubin.conf:1: remote_smtp_port: "+25" is not a port number (1-65535)`},
		{name: "remote_smtp_port name", conf: "remote_smtp_port = smtp",
			wantErr: `yubin.conf:1: remote_smtp_port: "smtp" is not a port number (1-65535)`},

		// tls
		{name: "tls both", conf: "tls_cert = /c.pem\ntls_key = /k.pem",
			field: func(c *Config) any { return c.TLSCert + " " + c.TLSKey }, want: "/c.pem /k.pem"},
		{name: "tls_cert alone", conf: "\n\ntls_cert = /c.pem",
			wantErr: `yubin.conf:3: tls_cert is set but tls_key is not (set both or neither)`},
		{name: "tls_key alone", conf: "tls_key = /k.pem",
			wantErr: `yubin.conf:1: tls_key is set but tls_cert is not (set both or neither)`},

		// message_size_limit
		{name: "size plain", conf: "message_size_limit = 1000",
			field: func(c *Config) any { return c.MessageSizeLimit }, want: int64(1000)},
		{name: "size k", conf: "message_size_limit = 10k",
			field: func(c *Config) any { return c.MessageSizeLimit }, want: int64(10 << 10)},
		{name: "size K", conf: "message_size_limit = 10K",
			field: func(c *Config) any { return c.MessageSizeLimit }, want: int64(10 << 10)},
		{name: "size m", conf: "message_size_limit = 25m",
			field: func(c *Config) any { return c.MessageSizeLimit }, want: int64(26214400)},
		{name: "size G", conf: "message_size_limit = 2G",
			field: func(c *Config) any { return c.MessageSizeLimit }, want: int64(2 << 30)},
		{name: "size 0", conf: "message_size_limit = 0",
			field: func(c *Config) any { return c.MessageSizeLimit }, want: int64(0)},
		{name: "size bad suffix", conf: "\n\n\n\n\n\n\n\nmessage_size_limit = 12x",
			wantErr: `yubin.conf:9: message_size_limit: "12x" is not a size`},
		{name: "size negative", conf: "message_size_limit = -1",
			wantErr: `yubin.conf:1: message_size_limit: "-1" is not a size`},
		{name: "size suffix only", conf: "message_size_limit = k",
			wantErr: `yubin.conf:1: message_size_limit: "k" is not a size`},
		{name: "size empty", conf: "message_size_limit =",
			wantErr: `yubin.conf:1: message_size_limit: "" is not a size`},
		{name: "size with space", conf: "message_size_limit = 10 m",
			wantErr: `yubin.conf:1: message_size_limit: "10 m" is not a size`},
		{name: "size overflow", conf: "message_size_limit = 9223372036854775807k",
			wantErr: `yubin.conf:1: message_size_limit: "9223372036854775807k" is too large a size`},
		{name: "size overflow digits", conf: "message_size_limit = 99999999999999999999",
			wantErr: `yubin.conf:1: message_size_limit: "99999999999999999999" is too large a size`},

		// delay_warning_time
		{name: "delay warning 2h", conf: "delay_warning_time = 2h",
			field: func(c *Config) any { return c.DelayWarningTime }, want: 2 * time.Hour},
		{name: "delay warning never", conf: "delay_warning_time = 0",
			field: func(c *Config) any { return c.DelayWarningTime }, want: time.Duration(0)},
		{name: "delay warning never 0h", conf: "delay_warning_time = 0h",
			field: func(c *Config) any { return c.DelayWarningTime }, want: time.Duration(0)},
		{name: "delay warning negative", conf: "delay_warning_time = -1h",
			wantErr: `yubin.conf:1: delay_warning_time: "-1h" is not a time (a number and s, m, h or d)`},

		// mail_owner
		{name: "mail_owner", conf: "mail_owner = _yubin",
			field: func(c *Config) any { return c.MailOwner }, want: "_yubin"},
		{name: "mail_owner with space", conf: "mail_owner = mail man",
			wantErr: `yubin.conf:1: mail_owner: "mail man" is not a user name`},
		{name: "mail_owner leading -", conf: "mail_owner = -mail",
			wantErr: `yubin.conf:1: mail_owner: "-mail" is not a user name`},
		{name: "mail_owner empty", conf: "mail_owner =",
			wantErr: `yubin.conf:1: mail_owner: "" is not a user name`},

		// syntax errors
		{name: "unknown key", conf: "# c\n\nqeue_dir = /q",
			wantErr: `yubin.conf:3: unknown key "qeue_dir" (did you mean "queue_dir"?)`},
		{name: "unknown key, Postfix name", conf: "myhostname = a.example",
			wantErr: `yubin.conf:1: unknown key "myhostname" (did you mean "hostname"?)`},
		{name: "unknown key, nothing near", conf: "mydestination = a.example",
			wantErr: `yubin.conf:1: unknown key "mydestination"`},
		{name: "keys are case-sensitive", conf: "Queue_Dir = /q",
			wantErr: `yubin.conf:1: unknown key "Queue_Dir" (did you mean "queue_dir"?)`},
		{name: "empty key", conf: "= /q",
			wantErr: `yubin.conf:1: unknown key ""`},
		{name: "no =", conf: "queue_dir /q",
			wantErr: `yubin.conf:1: "queue_dir /q" is not "key = value"`},
		{name: "continuation first", conf: "\n  queue_dir = /q",
			wantErr: `yubin.conf:2: indented line "queue_dir = /q" continues nothing (a key starts at the beginning of a line)`},
		{name: "first error wins", conf: "queue_dir =\nbogus = 1",
			wantErr: `yubin.conf:2: unknown key "bogus"`},
		{name: "line too long", conf: "queue_dir = /q\nusers_file = " + strings.Repeat("x", maxLine),
			wantErr: `yubin.conf:2: line longer than 1048576 bytes`},

		// expansion errors
		{name: "unknown $name", conf: "\naliases = $queue_dri/aliases",
			wantErr: `yubin.conf:2: aliases: $queue_dri: unknown key "queue_dri" (did you mean "queue_dir"?)`},
		{name: "unknown ${name}", conf: "aliases = ${nothing}",
			wantErr: `yubin.conf:1: aliases: $nothing: unknown key "nothing"`},
		{name: "stray $", conf: "aliases = /a/$",
			wantErr: `yubin.conf:1: aliases: "$" is not followed by a key name (write "$$" for a "$")`},
		{name: "$ before a non-name", conf: "aliases = /a/$-b",
			wantErr: `yubin.conf:1: aliases: "$" is not followed by a key name (write "$$" for a "$")`},
		{name: "unclosed ${", conf: "aliases = ${queue_dir/a",
			wantErr: `yubin.conf:1: aliases: "${" without "}"`},
		{name: "bad ${name}", conf: "aliases = ${queue dir}",
			wantErr: `yubin.conf:1: aliases: "${queue dir}" is not a key name`},
		{name: "self reference", conf: "queue_dir = $queue_dir/x",
			wantErr: `yubin.conf:1: queue_dir: recursive expansion: queue_dir -> queue_dir`},
		{name: "loop of two", conf: "aliases = $users_file\nusers_file = $aliases",
			wantErr: `yubin.conf:1: aliases: recursive expansion: users_file -> aliases -> users_file`},
		{name: "loop through a default", conf: "\nhostname = $local_domains",
			wantErr: `yubin.conf:2: hostname: recursive expansion: hostname -> local_domains -> hostname`},
		{name: "expanded value checked", conf: "hostname = $queue_dir",
			wantErr: `yubin.conf:1: hostname: "/var/spool/yubin" is not a host name`},
		{name: "error at the referenced key's line", conf: "aliases = $message_size_limit\nmessage_size_limit = 12x",
			wantErr: `yubin.conf:2: message_size_limit: "12x" is not a size`},
		{name: "expansion too long", conf: "users_file = " + strings.Repeat("$relay_auth_file", 100) + "\nrelay_auth_file = " + strings.Repeat("x", 20000),
			wantErr: `yubin.conf:1: users_file: value longer than 1048576 bytes after expansion`},
	}
	for _, tt := range tests {
		c, err := Parse("yubin.conf", strings.NewReader(tt.conf))
		if tt.wantErr != "" {
			var ce *Error
			switch {
			case err == nil:
				t.Errorf("%s: no error, want %q", tt.name, tt.wantErr)
			case !errors.As(err, &ce):
				t.Errorf("%s: error %T %v, want a *Error", tt.name, err, err)
			case err.Error() != tt.wantErr:
				t.Errorf("%s:\n got error %q\nwant error %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := tt.field(c); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, got, tt.want)
		}
	}
}

func TestError(t *testing.T) {
	inner := errors.New("boom")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"with line", &Error{File: "a.conf", Line: 3, Err: inner}, "a.conf:3: boom"},
		{"without line", &Error{File: "a.conf", Err: inner}, "a.conf: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
		if !errors.Is(tt.err, inner) {
			t.Errorf("%s: does not unwrap to its Err", tt.name)
		}
	}
}

func TestIsLocalDomain(t *testing.T) {
	c := &Config{LocalDomains: []string{"example.org", "localhost"}}
	tests := []struct {
		domain string
		want   bool
	}{
		{"example.org", true},
		{"EXAMPLE.Org", true},
		{"example.org.", true},
		{"localhost", true},
		{"sub.example.org", false},
		{"example.net", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := c.IsLocalDomain(tt.domain); got != tt.want {
			t.Errorf("IsLocalDomain(%q) = %v, want %v", tt.domain, got, tt.want)
		}
	}
}

func TestHostsFQDN(t *testing.T) {
	tests := []struct {
		name  string
		hosts string
		want  string
	}{
		{"alias", "127.0.0.1 localhost\n127.0.1.1 vm.example.org vm\n", "vm.example.org"},
		{"case", "127.0.1.1 vm.example.org VM\n", "vm.example.org"},
		{"first line with a dotted name", "127.0.1.1 vm\n10.0.0.1 vm.example.org vm\n", "vm.example.org"},
		{"canonical name without a dot", "127.0.1.1 vm vm.example.org\n", ""},
		{"commented out", "# 127.0.1.1 vm.example.org vm\n127.0.1.1 other.example vm2 # vm\n", ""},
		{"not listed", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		if got := hostsFQDN(strings.NewReader(tt.hosts), "vm"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := write("env.conf", "queue_dir = /from/env\n")
	flag := write("flag.conf", "queue_dir = /from/flag\n")
	def := write("default.conf", "queue_dir = /from/default\n")
	bad := write("bad.conf", "queue_dir = /q\nbogus = 1\n")
	missing := filepath.Join(dir, "missing.conf")

	tests := []struct {
		name        string
		path        string // the -C flag
		env         string // YUBIN_CONF
		defaultPath string
		wantFile    string
		wantQueue   string
		wantErr     string
	}{
		{name: "flag", path: flag, defaultPath: def, wantFile: flag, wantQueue: "/from/flag"},
		{name: "flag over YUBIN_CONF", path: flag, env: env, defaultPath: def, wantFile: flag, wantQueue: "/from/flag"},
		{name: "YUBIN_CONF", env: env, defaultPath: def, wantFile: env, wantQueue: "/from/env"},
		{name: "default", defaultPath: def, wantFile: def, wantQueue: "/from/default"},
		{name: "missing default gives the defaults", defaultPath: missing, wantFile: "", wantQueue: "/var/spool/yubin"},
		{name: "missing flag file", path: missing, defaultPath: def, wantErr: missing + ": no such file or directory"},
		{name: "missing YUBIN_CONF file", env: missing, defaultPath: def, wantErr: missing + ": no such file or directory"},
		{name: "default is a directory", defaultPath: dir, wantErr: dir + ": is a directory"},
		{name: "error names the file", path: bad, wantErr: bad + ":2: unknown key \"bogus\""},
	}
	for _, tt := range tests {
		t.Setenv("YUBIN_CONF", tt.env)
		c, err := load(tt.path, tt.defaultPath)
		if tt.wantErr != "" {
			var ce *Error
			if err == nil || !errors.As(err, &ce) || err.Error() != tt.wantErr {
				t.Errorf("%s: got error %v, want *Error %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.File != tt.wantFile || c.QueueDir != tt.wantQueue {
			t.Errorf("%s: File %q QueueDir %q, want %q %q", tt.name, c.File, c.QueueDir, tt.wantFile, tt.wantQueue)
		}
	}
}

// TestLoadExported checks Load itself; /etc/yubin cannot be created here, so
// only through YUBIN_CONF.
func TestLoadExported(t *testing.T) {
	p := filepath.Join(t.TempDir(), "yubin.conf")
	if err := os.WriteFile(p, []byte("hostname = mx.example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("YUBIN_CONF", p)
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != p || !c.IsLocalDomain("MX.example.org") {
		t.Errorf("Load(\"\") with YUBIN_CONF: File %q LocalDomains %q", c.File, c.LocalDomains)
	}

	t.Setenv("YUBIN_CONF", p+".missing")
	_, err = Load("")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(\"\") with a missing YUBIN_CONF file: got %v, want ErrNotExist", err)
	}
}

// TestSample checks that etc/yubin.conf parses to the defaults and shows
// every key, commented out, under its doc line.
func TestSample(t *testing.T) {
	const path = "../../etc/yubin.conf"
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("yubin.conf", strings.NewReader(string(text)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if want := defaults(t); !reflect.DeepEqual(got, want) {
		t.Errorf("%s does not give the defaults:\n got %+v\nwant %+v", path, got, want)
	}
	for _, k := range keys {
		setting := strings.TrimSpace("#" + k.name + " = " + k.def)
		if k.dynamic != nil {
			setting = "#" + k.name + " = "
		}
		i := strings.Index(string(text), "\n# "+k.doc+"\n")
		if i < 0 {
			t.Errorf("%s: no line %q", path, "# "+k.doc)
			continue
		}
		block, _, _ := strings.Cut(string(text[i+1:]), "\n\n")
		if !strings.Contains(block+"\n", "\n"+setting) {
			t.Errorf("%s: no %q under the doc line of %s", path, setting, k.name)
		}
	}
}

// TestManPage checks that yubin.conf(5) has an entry for every key.
func TestManPage(t *testing.T) {
	const path = "../../man/yubin.conf.5"
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(string(text), "\n.TP\n.B "+k.name+"\n") {
			t.Errorf("%s: no .TP entry for %s", path, k.name)
		}
	}
}
