package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// key is one configuration key: its name, its default as text in the file's
// own syntax (so "$hostname" works there too), a one-line description, and
// the function that checks a final value and stores it in a Config.
// Adding a key is one line here, plus its field, man page entry and sample.
type key struct {
	name    string
	def     string
	doc     string
	set     func(c *Config, v string) error
	dynamic func() (string, error) // computes the default instead of def
}

// keys is the table that Parse, the tests, yubin.conf(5) and etc/yubin.conf
// follow; the tests check that the last two list every key with its doc.
var keys = []key{
	{name: "hostname", doc: "This host's name in SMTP greetings and Received headers.", dynamic: defaultHostname,
		set: func(c *Config, v string) (err error) { c.Hostname, err = parseHostname(v); return err }},
	{name: "local_domains", def: "$hostname, localhost", doc: "Domains whose mail is delivered on this host.",
		set: func(c *Config, v string) (err error) { c.LocalDomains, err = parseDomains(v); return err }},
	{name: "queue_dir", def: "/var/spool/yubin", doc: "The mail queue, owned by mail_owner.",
		set: func(c *Config, v string) (err error) { c.QueueDir, err = parseRequired(v); return err }},
	{name: "mail_dir", def: "~/Maildir", doc: "A user's Maildir: %u the user, %d the domain, a leading ~ the home.",
		set: func(c *Config, v string) (err error) { c.MailDir, err = parseMailDir(v); return err }},
	{name: "users_file", def: "", doc: "Virtual users, name:hash[:uid:gid:home] lines; empty: the system's users.",
		set: func(c *Config, v string) error { c.UsersFile = v; return nil }},
	{name: "aliases", def: "/etc/aliases", doc: "The aliases file, in sendmail syntax; empty: no aliases.",
		set: func(c *Config, v string) error { c.Aliases = v; return nil }},
	{name: "smtp_listen", def: ":25", doc: "Addresses (host:port) smtpd listens on for SMTP; empty: none.",
		set: func(c *Config, v string) (err error) { c.SMTPListen, err = parseListen(v); return err }},
	{name: "submission_listen", def: ":587", doc: "Addresses (host:port) smtpd listens on for submission; empty: none.",
		set: func(c *Config, v string) (err error) { c.SubmissionListen, err = parseListen(v); return err }},
	{name: "pop3_listen", def: ":110", doc: "Addresses (host:port) a standalone pop3d listens on.",
		set: func(c *Config, v string) (err error) { c.POP3Listen, err = parseListen(v); return err }},
	{name: "pop3s_listen", def: "", doc: "Addresses (host:port) where pop3d speaks POP3 inside TLS (995); empty: none.",
		set: func(c *Config, v string) (err error) { c.POP3SListen, err = parseListen(v); return err }},
	{name: "plaintext_auth", def: "no", doc: "Accept passwords without TLS from non-loopback clients: yes or no.",
		set: func(c *Config, v string) (err error) { c.PlaintextAuth, err = parseYesNo(v); return err }},
	{name: "imap_listen", def: ":143", doc: "Addresses (host:port) a standalone imapd listens on.",
		set: func(c *Config, v string) (err error) { c.IMAPListen, err = parseListen(v); return err }},
	{name: "imaps_listen", def: "", doc: "Addresses (host:port) where imapd speaks IMAP inside TLS (993); empty: none.",
		set: func(c *Config, v string) (err error) { c.IMAPSListen, err = parseListen(v); return err }},
	{name: "relay_networks", def: "127.0.0.0/8, ::1/128", doc: "Clients that may relay without authentication (IP prefixes or addresses).",
		set: func(c *Config, v string) (err error) { c.RelayNetworks, err = parsePrefixes(v); return err }},
	{name: "relay_host", def: "", doc: "Smarthost: [host]:port, host:port or host; empty: deliver by MX records.",
		set: func(c *Config, v string) (err error) { c.RelayHost, err = parseRelayHost(v); return err }},
	{name: "relay_auth_file", def: "", doc: "Credentials for relay_host; empty: no authentication.",
		set: func(c *Config, v string) error { c.RelayAuthFile = v; return nil }},
	{name: "dns_servers", def: "", doc: "MX lookup resolvers, ip or ip:port (port 53); empty: from /etc/resolv.conf.",
		set: func(c *Config, v string) (err error) { c.DNSServers, err = parseDNSServers(v); return err }},
	{name: "remote_smtp_port", def: "25", doc: "The port dialed on MX hosts.",
		set: func(c *Config, v string) (err error) { c.RemoteSMTPPort, err = parsePort(v); return err }},
	{name: "tls_cert", def: "", doc: "Certificate (PEM) for STARTTLS, STLS and implicit TLS; needs tls_key.",
		set: func(c *Config, v string) error { c.TLSCert = v; return nil }},
	{name: "tls_key", def: "", doc: "Private key (PEM) of tls_cert.",
		set: func(c *Config, v string) error { c.TLSKey = v; return nil }},
	{name: "message_size_limit", def: "26214400", doc: "Largest message in bytes; k, m, g suffixes multiply by 1024; 0: no limit.",
		set: func(c *Config, v string) (err error) { c.MessageSizeLimit, err = parseSize(v); return err }},
	{name: "mail_owner", def: "mail", doc: "User owning the queue, that daemons run as; group of sendmail and mailq.",
		set: func(c *Config, v string) (err error) { c.MailOwner, err = parseUser(v); return err }},
	{name: "maillog_file", def: "", doc: "File all programs append log lines to, syslog format; empty: use syslog.",
		set: func(c *Config, v string) error { c.MaillogFile = v; return nil }},
	{name: "smtps_listen", def: "", doc: "Addresses (host:port) where smtpd speaks SMTP inside TLS (465); empty: none.",
		set: func(c *Config, v string) (err error) { c.SMTPSListen, err = parseListen(v); return err }},
	{name: "smtp_recipient_limit", def: "100", doc: "Most recipients smtpd accepts for one message (452 4.5.3 beyond).",
		set: func(c *Config, v string) (err error) { c.SMTPRecipientLimit, err = parseCount(v); return err }},
	{name: "smtp_error_limit", def: "20", doc: "Error replies after which smtpd says 421 and closes the session.",
		set: func(c *Config, v string) (err error) { c.SMTPErrorLimit, err = parseCount(v); return err }},
	{name: "smtp_client_connection_limit", def: "50", doc: "Sessions at once from one client outside relay_networks; 0: no limit.",
		set: func(c *Config, v string) (err error) { c.SMTPClientConnectionLimit, err = parseCount(v); return err }},
	{name: "smtp_timeout", def: "300s", doc: "How long smtpd waits for a client's next command (s, m or h suffix).",
		set: func(c *Config, v string) (err error) { c.SMTPTimeout, err = parseDuration(v); return err }},
	{name: "smtp_data_timeout", def: "600s", doc: "How long smtpd waits for more of a message in DATA (s, m or h suffix).",
		set: func(c *Config, v string) (err error) { c.SMTPDataTimeout, err = parseDuration(v); return err }},
	{name: "min_backoff_time", def: "300s", doc: "Shortest wait before a deferred recipient is tried again (s, m, h or d).",
		set: func(c *Config, v string) (err error) { c.MinBackoffTime, err = parseDuration(v); return err }},
	{name: "max_backoff_time", def: "3600s", doc: "Longest wait between attempts of a deferred recipient (s, m, h or d).",
		set: func(c *Config, v string) (err error) { c.MaxBackoffTime, err = parseDuration(v); return err }},
	{name: "queue_run_delay", def: "300s", doc: "Time between the runner daemon's scans of the whole queue (s, m, h or d).",
		set: func(c *Config, v string) (err error) { c.QueueRunDelay, err = parseDuration(v); return err }},
	{name: "max_queue_lifetime", def: "5d", doc: "Age after which mail still deferred bounces (s, m, h or d).",
		set: func(c *Config, v string) (err error) { c.MaxQueueLifetime, err = parseDuration(v); return err }},
	{name: "delay_warning_time", def: "4h", doc: "Age of deferred mail that warns its sender once (s, m, h or d); 0: never.",
		set: func(c *Config, v string) (err error) { c.DelayWarningTime, err = parseDurationOrNever(v); return err }},
	{name: "relay_connect_timeout", def: "30s", doc: "How long the runner waits for a remote server to answer a connect.",
		set: func(c *Config, v string) (err error) { c.RelayConnectTimeout, err = parseDuration(v); return err }},
	{name: "relay_timeout", def: "300s", doc: "How long the runner waits for each reply, read or write of a remote server.",
		set: func(c *Config, v string) (err error) { c.RelayTimeout, err = parseDuration(v); return err }},
	{name: "relay_tls_verify", def: "yes", doc: "Verify relay_host's certificate when authenticating to it: yes or no.",
		set: func(c *Config, v string) (err error) { c.RelayTLSVerify, err = parseYesNo(v); return err }},
	{name: "relay_tls_policy", def: "", doc: "TLS per destination, \"example.com verify, .example.org encrypt\"; others may.",
		set: func(c *Config, v string) (err error) { c.RelayTLSPolicy, err = parseTLSPolicy(v); return err }},
	{name: "relay_connection_cache_time", def: "2s", doc: "How long a relay connection waits for the next message; 0: no reuse.",
		set: func(c *Config, v string) (err error) { c.RelayConnectionCacheTime, err = parseDuration(v); return err }},
	{name: "queue_concurrency", def: "10", doc: "Messages the runner delivers at once.",
		set: func(c *Config, v string) (err error) { c.QueueConcurrency, err = parseCount(v); return err }},
	{name: "destination_concurrency", def: "20", doc: "SMTP transactions at once to one destination (domain or relay_host).",
		set: func(c *Config, v string) (err error) { c.DestinationConcurrency, err = parseCount(v); return err }},
	{name: "bounce_limit", def: "100", doc: "Most bounces the runner sends to one sender in an hour; 0: no limit.",
		set: func(c *Config, v string) (err error) { c.BounceLimit, err = parseCount(v); return err }},
}

// lookup returns the table entry of key name, or nil.
func lookup(name string) *key {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

// parseYesNo takes Postfix's boolean words.
func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither yes nor no", v)
}

// parseCount takes a number of things, 0 or more.
func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count", v)
	}
	return n, nil
}

// parseDurationOrNever takes a time as parseDuration does, or 0 (with or
// without a suffix) for "never".
func parseDurationOrNever(v string) (time.Duration, error) {
	if v == "0" || len(v) == 2 && v[0] == '0' && strings.ContainsRune("smhd", rune(v[1])) {
		return 0, nil
	}
	return parseDuration(v)
}

// parseDuration takes Postfix's time values: a number with an s, m, h or
// d suffix, seconds without one.
func parseDuration(v string) (time.Duration, error) {
	unit := time.Second
	num := v
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 's':
			num = v[:n-1]
		case 'm':
			unit, num = time.Minute, v[:n-1]
		case 'h':
			unit, num = time.Hour, v[:n-1]
		case 'd':
			unit, num = 24*time.Hour, v[:n-1]
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a time (a number and s, m, h or d)", v)
	}
	return time.Duration(n) * unit, nil
}
