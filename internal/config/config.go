// Package config reads yubin.conf, the one configuration file of the yubin
// mail system (default /etc/yubin/yubin.conf, or -C FILE, or $YUBIN_CONF).
// Only cmd/ imports it; the packages below take their own Options.
//
// The format is that of Postfix's main.cf:
//
//	# a comment: a line whose first non-blank character is "#"
//	queue_dir = /var/spool/yubin
//	local_domains = $hostname, localhost,
//	    example.org, example.net
//
// Blank lines and comment lines are ignored. A line is "key = value", split at
// the first "="; whitespace around the key and the value is trimmed. A line
// that starts with a space or a tab continues the value of the key above it,
// joined with a single space. A key set twice takes the later value.
//
// In a value, $name and ${name} stand for the final value of key name (its
// default when the file does not set it), and $$ for a literal "$". An
// unknown name, or a key whose value refers back to itself, is an error.
// Lists are separated by commas and/or whitespace.
//
// Every key has a default (the table in keys.go), so an empty or missing
// default file gives a working local-only system. Every error is an *Error
// naming the file and line ("yubin.conf:7: unknown key ..."); programs exit
// EX_CONFIG (78) on it.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"
)

// DefaultPath is read when neither -C nor $YUBIN_CONF names a file.
const DefaultPath = "/etc/yubin/yubin.conf"

// maxLine bounds a physical line and a value after expansion, so a hostile
// or broken file cannot make a program allocate without end.
const maxLine = 1 << 20

// Config is the parsed yubin.conf. See yubin.conf(5) for each key.
type Config struct {
	File             string   // the file read; "" when none (defaults only)
	Hostname         string   // hostname
	LocalDomains     []string // local_domains, lower-cased
	QueueDir         string   // queue_dir
	MailDir          string   // mail_dir, with %u, %d and ~ unexpanded
	UsersFile        string   // users_file; "" means system users
	Aliases          string   // aliases; "" means no aliases file
	SMTPListen       []string // smtp_listen, host:port
	SubmissionListen []string // submission_listen, host:port
	POP3Listen       []string // pop3_listen, host:port
	POP3SListen      []string // pop3s_listen, host:port (implicit TLS)
	PlaintextAuth    bool     // plaintext_auth
	IMAPListen       []string // imap_listen, host:port
	IMAPSListen      []string // imaps_listen, host:port (implicit TLS)
	RelayNetworks    []netip.Prefix
	RelayHost        string   // relay_host; "" means MX lookup
	RelayAuthFile    string   // relay_auth_file
	DNSServers       []string // dns_servers, "ip:port"; empty means the system's resolvers
	RemoteSMTPPort   int      // remote_smtp_port
	TLSCert, TLSKey  string   // tls_cert, tls_key: both set or both empty
	MessageSizeLimit int64    // message_size_limit in bytes; 0 means no limit
	MailOwner        string   // mail_owner, a user name
	MaillogFile      string   // maillog_file; "" means syslog
	SMTPSListen      []string // smtps_listen, host:port (implicit TLS)

	SMTPRecipientLimit        int           // smtp_recipient_limit
	SMTPErrorLimit            int           // smtp_error_limit
	SMTPClientConnectionLimit int           // smtp_client_connection_limit; 0: none
	SMTPTimeout               time.Duration // smtp_timeout
	SMTPDataTimeout           time.Duration // smtp_data_timeout

	QueueRunDelay          time.Duration // queue_run_delay
	MinBackoffTime         time.Duration // min_backoff_time
	MaxBackoffTime         time.Duration // max_backoff_time
	MaxQueueLifetime       time.Duration // max_queue_lifetime
	DelayWarningTime       time.Duration // delay_warning_time; 0: never
	RelayConnectTimeout    time.Duration // relay_connect_timeout
	RelayTimeout           time.Duration // relay_timeout
	RelayTLSVerify         bool          // relay_tls_verify
	QueueConcurrency       int           // queue_concurrency
	DestinationConcurrency int           // destination_concurrency
	BounceLimit            int           // bounce_limit; 0: no limit

	RelayTLSPolicy           map[string]string // relay_tls_policy: domain or .parent → none, may, encrypt, verify
	RelayConnectionCacheTime time.Duration     // relay_connection_cache_time; 0: no reuse
}

// IsLocalDomain reports whether mail for domain is delivered here. The
// comparison ignores case and a trailing dot.
func (c *Config) IsLocalDomain(domain string) bool {
	domain = strings.TrimSuffix(domain, ".")
	for _, d := range c.LocalDomains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// Error is a configuration error; every program exits EX_CONFIG (78) on it.
type Error struct {
	File string
	Line int // 0 when the error is not on one line
	Err  error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads the configuration named by path (the -C flag; "" when not
// given). With path "": $YUBIN_CONF if set, else DefaultPath. A missing
// DefaultPath gives the defaults; a file named by -C or YUBIN_CONF that
// cannot be read is an error.
func Load(path string) (*Config, error) {
	return load(path, DefaultPath)
}

// Path is the file Load(path) reads: path, else $YUBIN_CONF, else
// DefaultPath.
func Path(path string) string {
	if p := named(path); p != "" {
		return p
	}
	return DefaultPath
}

// named is the file named by -C (path) or $YUBIN_CONF, or "".
func named(path string) string {
	if path == "" {
		return os.Getenv("YUBIN_CONF")
	}
	return path
}

// load is Load with the default path as a parameter, for tests.
func load(path, defaultPath string) (*Config, error) {
	path = named(path)
	given := path != ""
	if !given {
		path = defaultPath
	}
	f, err := os.Open(path)
	if err != nil {
		if !given && errors.Is(err, fs.ErrNotExist) {
			// No file at all: the defaults, with errors (say, no
			// hostname) still pointing at where to fix them.
			c, err := Parse(path, strings.NewReader(""))
			if err != nil {
				return nil, err
			}
			c.File = ""
			return c, nil
		}
		return nil, &Error{File: path, Err: unwrapPath(err)}
	}
	defer f.Close()
	return Parse(path, f)
}

// unwrapPath drops the *fs.PathError around err: Error already names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse reads configuration text; name is used in error messages and
// becomes Config.File.
func Parse(name string, r io.Reader) (*Config, error) {
	set, err := scan(name, r)
	if err != nil {
		return nil, err
	}
	x := &expander{file: name, set: set, done: make(map[string]string)}
	c := &Config{File: name}
	for i := range keys {
		k := &keys[i]
		v, err := x.value(k.name)
		if err != nil {
			return nil, err
		}
		if err := k.set(c, v); err != nil {
			return nil, &Error{File: name, Line: set[k.name].line, Err: fmt.Errorf("%s: %w", k.name, err)}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		have, lack := "tls_cert", "tls_key"
		if c.TLSCert == "" {
			have, lack = lack, have
		}
		return nil, &Error{File: name, Line: set[have].line, Err: fmt.Errorf("%s is set but %s is not (set both or neither)", have, lack)}
	}
	return c, nil
}

// setting is one key's text as the file gives it.
type setting struct {
	value string
	line  int
}

// scan reads the logical lines of a file: comments and blank lines dropped,
// continuation lines joined, keys checked against the table.
func scan(name string, r io.Reader) (map[string]setting, error) {
	set := make(map[string]setting)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	last := "" // the key that a continuation line continues
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		text := strings.TrimSpace(line)
		if text == "" || text[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, &Error{File: name, Line: n, Err: fmt.Errorf("indented line %q continues nothing (a key starts at the beginning of a line)", text)}
			}
			s := set[last]
			s.value = strings.TrimSpace(s.value + " " + text)
			set[last] = s
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			return nil, &Error{File: name, Line: n, Err: fmt.Errorf("%q is not \"key = value\"", text)}
		}
		key = strings.TrimSpace(key)
		if lookup(key) == nil {
			return nil, &Error{File: name, Line: n, Err: unknownKey(key)}
		}
		set[key] = setting{value: strings.TrimSpace(value), line: n}
		last = key
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &Error{File: name, Line: n + 1, Err: fmt.Errorf("line longer than %d bytes", maxLine)}
		}
		return nil, &Error{File: name, Err: unwrapPath(err)}
	}
	return set, nil
}

// unknownKey names the nearest known key when there is a plausible one.
func unknownKey(name string) error {
	if near := nearest(name); near != "" {
		return fmt.Errorf("unknown key %q (did you mean %q?)", name, near)
	}
	return fmt.Errorf("unknown key %q", name)
}

// nearest returns the key within two edits of name, or "".
func nearest(name string) string {
	best, bestDist := "", 3
	for _, k := range keys {
		if len(name) >= len(k.name)+bestDist || len(k.name) >= len(name)+bestDist {
			continue // too far apart, and cheap to tell
		}
		if d := editDistance(name, k.name); d < bestDist && d < len(name) {
			best, bestDist = k.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
