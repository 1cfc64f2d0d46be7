// Package relay passes mail for other domains on by SMTP: it finds the
// destination's mail exchangers in DNS (or uses the smarthost, relay_host)
// and runs one SMTP transaction per destination with go-smtp's client.
//
// # Routing (RFC 5321 §5.1, RFC 7505)
//
// MX records are asked of the configured resolvers (dns_servers, else
// /etc/resolv.conf) with miekg/dns: sorted by preference, equal preferences
// in random order, each tried in turn, IPv6 addresses before IPv4. No MX
// record: the domain's own A/AAAA records (implicit MX). A null MX ("MX 0
// .") bounces at once with 5.1.10; NXDOMAIN bounces with 5.1.2; SERVFAIL, a
// timeout or an unreachable resolver is temporary (4.4.3). CNAMEs are
// followed, up to 8 links. A domain literal (user@[192.0.2.1]) is dialed
// as is.
//
// relay_host sends everything through one smarthost: "[host]:port" (the
// brackets: no MX lookup, the host's A/AAAA), "host:port" or "host" (the
// host's MX records, as Postfix's relayhost). A smarthost that cannot be
// resolved is always temporary: mail waits, it does not bounce because a
// resolver had a bad minute. The port defaults to remote_smtp_port.
//
// # The transaction
//
// EHLO (HELO when EHLO is refused with 500/502), STARTTLS as the
// destination's TLS level says (relay_tls_policy, RFC 3207; Postfix's
// levels): "may", the default, when offered, not verified, and a failed
// handshake is retried without TLS; "none" never; "encrypt" required,
// deferring with 4.7.4 when not offered and 4.7.5 when it fails, never
// falling back to clear; "verify" also checks the certificate against the
// MX host name (relay_host's name) and Options.RootCAs. AUTH to a smarthost
// raises the level to verify (encrypt with Options.InsecureTLS). Then AUTH
// PLAIN or LOGIN from relay_auth_file (smarthost only), MAIL FROM with
// SIZE, BODY=8BITMIME, SMTPUTF8 and the DSN parameters RET and ENVID when
// the server has the extensions, one RCPT TO per recipient with NOTIFY and
// ORCPT, DATA. All recipients for one destination go in one transaction. A
// message that needs SMTPUTF8, sent to a server without it, fails with
// 5.6.7 (RFC 6531 §3.4).
//
// No PIPELINING (RFC 2920): go-smtp's Client (v0.25.1) writes each
// command and reads its reply before it returns (Client.cmd), and keeps
// its connection's reader and writer unexported, so MAIL and the RCPTs
// cannot be sent as one batch through its API; doing it would mean writing
// those commands, with their DSN and SMTPUTF8 parameters, ourselves. Each
// command costs a round trip; connection reuse saves the ones of the
// greeting, EHLO, STARTTLS and AUTH instead.
//
// # Connection reuse
//
// As Postfix's connection cache: after a transaction a connection waits
// Options.CacheTime (relay_connection_cache_time, 2 s) for the next message
// to the same address set up the same way (MX name, TLS level, AUTH), and
// is not reused once 300 s old; 100 idle connections at most, the oldest
// closed first. A transaction that stopped half way (every RCPT refused,
// DATA refused) is ended with RSET before reuse; a 421 or a lost
// connection closes it. A cached connection the server has closed meanwhile
// fails at MAIL, before anything was accepted: it is dropped and the
// message goes on a new connection, with no failure recorded. Relay.Close
// sends QUIT on the idle connections.
//
// Each recipient's outcome is its own: 2xx delivered, 5xx bounced, 4xx
// (or a connection lost, or no reply in time) tried at the next mail
// exchanger, and deferred when none is left. Every dial, read and write has
// a timeout (Options), so a peer that stalls costs at most that.
package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Relay.
type Options struct {
	Hostname string // our name in EHLO
	Resolver *Resolver
	Port     int // remote_smtp_port; 0: 25
	// RelayHost is relay_host: "[host]:port", "host:port" or "host"; "" is MX routing.
	RelayHost string
	// Auth, when not nil, is the login for RelayHost (relay_auth_file).
	Auth *Credentials
	// DialTimeout bounds each connect (default 30 s); CommandTimeout each
	// command's reply and each read or write (default 5 min, RFC 5321
	// §4.5.3.2); DataTimeout the reply to the final dot (default 10 min).
	DialTimeout, CommandTimeout, DataTimeout time.Duration
	// TLSPolicy is relay_tls_policy: the TLS level per next-hop domain
	// ("example.com"), or per subdomain of one (".example.org"); the rest
	// get TLSMay.
	TLSPolicy map[string]TLSLevel
	// RootCAs verifies certificates at TLSVerify; nil: the system's.
	RootCAs *x509.CertPool
	// InsecureTLS makes AUTH to RelayHost require TLSEncrypt rather than
	// TLSVerify (relay_tls_verify = no).
	InsecureTLS bool
	// CacheTime is how long a connection waits for its next message
	// (relay_connection_cache_time; 0: 2 s, <0: no reuse), CacheSize how
	// many idle connections are kept (0: 100).
	CacheTime time.Duration
	CacheSize int
}

// Credentials is a user name and password for AUTH.
type Credentials struct {
	User, Password string
}

// Relay delivers messages to remote destinations. It is safe for
// concurrent use.
type Relay struct {
	o     Options
	cache cache
	mu    sync.Mutex
	noTLS map[string]time.Time // host address → when its STARTTLS failed
}

// New returns a Relay.
func New(o Options) *Relay {
	if o.Port == 0 {
		o.Port = 25
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.DataTimeout <= 0 {
		o.DataTimeout = 10 * time.Minute
	}
	if o.Resolver == nil {
		o.Resolver = &Resolver{}
	}
	if o.CacheTime == 0 {
		o.CacheTime = defaultCacheTime
	}
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	return &Relay{o: o, cache: cache{idleTime: o.CacheTime, size: o.CacheSize}, noTLS: map[string]time.Time{}}
}

// Close ends the connections waiting for reuse (QUIT), and any that a
// Deliver still running finishes with.
func (r *Relay) Close() {
	r.cache.close()
}

// Message is what one transaction sends.
type Message struct {
	From       string // "" for <>
	Recipients []Recipient
	// Body returns a fresh reader of the message (LF line endings) each call.
	Body     func() io.Reader
	Size     int64
	Ret      string // DSN RET: FULL, HDRS or ""
	EnvID    string
	SMTPUTF8 bool // the message needs SMTPUTF8
}

// Recipient is one RCPT TO.
type Recipient struct {
	Addr   string
	Notify string // "NEVER" or "SUCCESS,DELAY,FAILURE" subsets; "" none
	ORCPT  string // "rfc822;addr" as received (xtext)
}

// Result is the outcome for one recipient.
type Result struct {
	Code  string // RFC 3463 status, "2.0.0", "4.4.1", "5.1.1"
	Reply string // the remote reply ("550 5.1.1 <b@y>: no such user") or our reason
	// Relay is where it went or was refused, "mx.y[192.0.2.1]:25"; "" when
	// no server was reached.
	Relay string
	// RemoteMTA is the name of the server that replied, for the DSN.
	RemoteMTA string
	// Diagnostic is the server's reply alone ("550 5.1.1 no such user"),
	// for the DSN's Diagnostic-Code; "" when no server replied.
	Diagnostic string
}

// Delivered reports a 2.x.x outcome.
func (r Result) Delivered() bool { return strings.HasPrefix(r.Code, "2") }

// Temporary reports a 4.x.x outcome (or none).
func (r Result) Temporary() bool { return !r.Delivered() && !strings.HasPrefix(r.Code, "5") }

// Destination is the key for concurrency limits and grouping: the
// smarthost when there is one, else the recipient's domain (lower case).
func (r *Relay) Destination(domain string) string {
	if r.o.RelayHost != "" {
		return r.o.RelayHost
	}
	return strings.ToLower(strings.TrimSuffix(domain, "."))
}

// relayHost splits RelayHost: the host, the port (Options.Port when it
// has none) and whether it was bracketed (no MX lookup).
func (r *Relay) relayHost() (host string, port int, noMX bool) {
	host, port = r.o.RelayHost, r.o.Port
	if rest, ok := strings.CutPrefix(host, "["); ok {
		noMX = true
		var after string
		host, after, _ = strings.Cut(rest, "]")
		if p, ok := strings.CutPrefix(after, ":"); ok {
			port, _ = strconv.Atoi(p)
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		port, _ = strconv.Atoi(host[i+1:])
		host = host[:i]
	}
	return host, port, noMX
}

// route returns the hosts to try for domain and the port to dial.
func (r *Relay) route(ctx context.Context, domain string) ([]Host, int, error) {
	if r.o.RelayHost == "" {
		hosts, err := r.o.Resolver.LookupMX(ctx, domain)
		return hosts, r.o.Port, err
	}
	host, port, noMX := r.relayHost()
	var hosts []Host
	var err error
	if noMX {
		var addrs []netip.Addr
		if addrs, err = r.o.Resolver.LookupHost(ctx, host); err == nil {
			hosts = []Host{{Name: host, Addrs: addrs}}
		}
	} else {
		hosts, err = r.o.Resolver.LookupMX(ctx, host)
	}
	if err != nil {
		// The smarthost is ours: a name that does not resolve now is our
		// problem, never the sender's.
		reply := err.Error()
		return nil, 0, &Error{Code: "4.4.3", Reply: "relay_host " + r.o.RelayHost + ": " + reply}
	}
	return hosts, port, nil
}

// Deliver sends msg to the mail exchangers of domain (or the smarthost)
// and returns one Result per recipient, in order.
func (r *Relay) Deliver(ctx context.Context, domain string, msg *Message) []Result {
	results := make([]Result, len(msg.Recipients))
	hosts, port, err := r.route(ctx, domain)
	if err != nil {
		code, reply := "4.4.3", err.Error()
		var e *Error
		if errors.As(err, &e) {
			code = e.Code
		}
		for i := range results {
			results[i] = Result{Code: code, Reply: reply}
		}
		return results
	}
	open := make([]int, len(msg.Recipients)) // recipients not yet final
	for i := range open {
		open[i] = i
	}
	level := r.tlsLevel(domain)
	auth := r.o.Auth != nil && r.o.RelayHost != ""
	var last Result
	for _, h := range hosts {
		for _, a := range h.Addrs {
			if len(open) == 0 {
				return results
			}
			if ctx.Err() != nil {
				last = Result{Code: "4.4.2", Reply: "delivery interrupted: " + ctx.Err().Error()}
				break
			}
			if hostErr := r.attempt(ctx, connKey{netip.AddrPortFrom(a, uint16(port)), h.Name, level, auth}, msg, open, results); hostErr != nil {
				last = *hostErr
				continue
			}
			var still []int
			for _, i := range open {
				if results[i].Temporary() {
					last = results[i]
					still = append(still, i)
				}
			}
			open = still
		}
	}
	if last.Code == "" {
		last = Result{Code: "4.4.1", Reply: "no mail exchanger could be reached"}
	}
	for _, i := range open {
		if results[i].Code == "" || !results[i].Temporary() {
			results[i] = last
		}
	}
	return results
}

// attempt runs one transaction with one server for the recipients in open,
// filling their results, on a cached connection set up as k when there is
// one, else on a new one. A non-nil *Result is a failure of the whole
// connection (connect, greeting, TLS, AUTH, MAIL) to record for all of them
// unless another host does better.
func (r *Relay) attempt(ctx context.Context, k connKey, msg *Message, open []int, results []Result) *Result {
	where := fmt.Sprintf("%s[%s]:%d", k.name, k.addr.Addr(), k.addr.Port())
	for {
		s, reused := r.cache.get(k), true
		if s == nil {
			var fail *Result
			if s, fail = r.open(ctx, k, where); fail != nil {
				return fail
			}
			reused = false
		}
		stop := context.AfterFunc(ctx, func() { s.c.Close() })
		fail, state := r.transaction(s.c, msg, open, results, where, k.name)
		if !stop() {
			state = broken
		}
		if state == stale && reused {
			// The server closed the connection while it waited in the
			// cache; MAIL was not accepted, so nothing happened: not a
			// failure of this message.
			s.c.Close()
			continue
		}
		r.release(s, state)
		return fail
	}
}

// after is what a transaction leaves its connection fit for.
type after int

const (
	clean  after = iota // no transaction open: reusable as it is
	dirty               // a transaction may be open: RSET before reuse
	broken              // lost, timed out or 421: close
	stale               // broken before MAIL was accepted: nothing was done
)

// afterError is the state an error leaves: broken when the connection
// failed or the server is closing it (421), else state.
func afterError(err error, state after) after {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code == 421 {
		return broken
	}
	return state
}

// release puts s back in the cache after a transaction, with RSET first
// when one may be open, or ends it. go-smtp's Reset forgets the EHLO, and
// its Extension would say it again on the next use and answer "no" when
// that fails on a connection closed meanwhile (a message needing SMTPUTF8
// would bounce): EHLO now, so that a cached connection needs none.
func (r *Relay) release(s *session, state after) {
	switch {
	case state == clean, state == dirty && s.c.Reset() == nil && s.c.Hello(r.o.Hostname) == nil:
		r.cache.put(s)
	default:
		s.c.Close()
	}
}

// transaction sends msg to the recipients in open over c: MAIL, RCPT,
// DATA. Its *Result is as attempt's.
func (r *Relay) transaction(c *smtp.Client, msg *Message, open []int, results []Result, where, name string) (*Result, after) {
	if msg.SMTPUTF8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			for _, i := range open {
				results[i] = Result{Code: "5.6.7", Reply: where + " does not support SMTPUTF8, which the message needs", Relay: where, RemoteMTA: name}
			}
			return nil, clean
		}
	}
	mo := &smtp.MailOptions{Size: msg.Size, UTF8: msg.SMTPUTF8, EnvelopeID: msg.EnvID}
	switch strings.ToUpper(msg.Ret) {
	case "FULL":
		mo.Return = smtp.DSNReturnFull
	case "HDRS":
		mo.Return = smtp.DSNReturnHeaders
	}
	if err := c.Mail(msg.From, mo); err != nil {
		res := smtpResult(err, where, name, "MAIL FROM")
		if afterError(err, clean) == broken {
			return &res, stale
		}
		if strings.HasPrefix(res.Code, "5") {
			for _, i := range open {
				results[i] = res
			}
			return nil, clean
		}
		return &res, clean
	}
	var accepted []int
	for _, i := range open {
		rc := msg.Recipients[i]
		if err := c.Rcpt(rc.Addr, rcptOptions(rc)); err != nil {
			results[i] = smtpResult(err, where, name, "RCPT TO")
			if afterError(err, dirty) == broken {
				return &results[i], broken
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		return nil, dirty // MAIL was accepted: the transaction is open
	}
	res, state := r.data(c, msg, where, name)
	for _, i := range accepted {
		results[i] = res
	}
	return nil, state
}

// data sends the message and returns the server's verdict on it.
func (r *Relay) data(c *smtp.Client, msg *Message, where, name string) (Result, after) {
	w, err := c.Data()
	if err != nil {
		return smtpResult(err, where, name, "DATA"), afterError(err, dirty)
	}
	if _, err := io.Copy(w, msg.Body()); err != nil {
		w.Close()
		return Result{Code: "4.4.2", Reply: "lost connection with " + where + " while sending message body: " + err.Error(), Relay: where, RemoteMTA: name}, broken
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		// Any reply to the final dot ends the transaction.
		return smtpResult(err, where, name, "end of DATA"), afterError(err, clean)
	}
	reply := "250 " + oneLine(resp.StatusText)
	return Result{Code: "2.0.0", Reply: reply, Relay: where, RemoteMTA: name, Diagnostic: reply}, clean
}

// open makes a new connection set up as k: connect, then AUTH to the
// smarthost.
func (r *Relay) open(ctx context.Context, k connKey, where string) (*session, *Result) {
	s, fail := r.connect(ctx, k, where)
	if fail != nil || !k.auth {
		return s, fail
	}
	c := s.c
	var a sasl.Client
	switch {
	case c.SupportsAuth("PLAIN"):
		a = sasl.NewPlainClient("", r.o.Auth.User, r.o.Auth.Password)
	case c.SupportsAuth("LOGIN"):
		a = sasl.NewLoginClient(r.o.Auth.User, r.o.Auth.Password)
	default:
		s.quit()
		return nil, &Result{Code: "4.7.0", Reply: where + " offers no AUTH PLAIN or LOGIN", Relay: where}
	}
	if err := c.Auth(a); err != nil {
		c.Close()
		// A refused login is our configuration's fault: wait for a fix.
		res := smtpResult(err, where, k.name, "AUTH")
		res.Code = "4" + res.Code[1:]
		return nil, &res
	}
	return s, nil
}

// connect dials k.addr and speaks up to MAIL: greeting, EHLO, STARTTLS
// as k.level asks.
//
// go-smtp's Client cannot start TLS on a session it has opened, only in
// NewClientStartTLS, which greets with "EHLO localhost" and fails when
// STARTTLS is not offered. So a first connection tries that (then EHLO
// again with our name inside TLS, and a NOOP that makes the handshake
// happen now rather than at MAIL). At TLSMay, when the server has no
// STARTTLS, or it or the handshake fails, a second connection goes on
// without TLS, as Postfix's "may" level does, and the address is
// remembered for an hour so that the next messages dial once. At
// TLSEncrypt and TLSVerify that failure is the result.
func (r *Relay) connect(ctx context.Context, k connKey, where string) (*session, *Result) {
	name := k.name
	required := !k.level.below(TLSEncrypt)
	if required || k.level == TLSMay && !r.skipTLS(k.addr.String()) {
		tc, fail := r.dial(ctx, k.addr, where)
		if fail != nil {
			return nil, fail
		}
		cfg := &tls.Config{ServerName: name, InsecureSkipVerify: k.level != TLSVerify, RootCAs: r.o.RootCAs}
		c, err := smtp.NewClientStartTLS(tc, cfg)
		if err == nil {
			c.CommandTimeout, c.SubmissionTimeout = r.o.CommandTimeout, r.o.DataTimeout
			if err = c.Hello(r.o.Hostname); err == nil {
				err = c.Noop()
			}
			if err == nil {
				return &session{c: c, tc: tc, key: k, born: time.Now()}, nil
			}
			c.Close()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			res := smtpResult(err, where, name, "STARTTLS")
			return nil, &res
		}
		if required {
			return nil, tlsFailure(err, where, name)
		}
		r.mu.Lock()
		r.noTLS[k.addr.String()] = time.Now()
		r.mu.Unlock()
	}
	tc, fail := r.dial(ctx, k.addr, where)
	if fail != nil {
		return nil, fail
	}
	c := smtp.NewClient(tc)
	c.CommandTimeout, c.SubmissionTimeout = r.o.CommandTimeout, r.o.DataTimeout
	if err := c.Hello(r.o.Hostname); err != nil {
		c.Close()
		res := smtpResult(err, where, name, "EHLO")
		return nil, &res
	}
	// Hello only names us; the greeting and EHLO happen at the first
	// command. Let their failure be seen here, as a failure of this host.
	if err := c.Noop(); err != nil {
		c.Close()
		res := smtpResult(err, where, name, "EHLO")
		return nil, &res
	}
	return &session{c: c, tc: tc, key: k, born: time.Now()}, nil
}

// errNoSTARTTLS is go-smtp's NewClientStartTLS error when the server does
// not offer STARTTLS; it has no sentinel (TestTLSPolicy pins the text).
const errNoSTARTTLS = "smtp: server doesn't support STARTTLS"

// tlsFailure is the result when TLS is required and could not be had:
// 4.7.4 when not offered, the server's reply to STARTTLS as a 4xx, else
// 4.7.5 (the handshake or the certificate failed).
func tlsFailure(err error, where, name string) *Result {
	var se *smtp.SMTPError
	switch {
	case err.Error() == errNoSTARTTLS:
		return &Result{Code: "4.7.4", Reply: "TLS is required, but was not offered by " + where, Relay: where, RemoteMTA: name}
	case errors.As(err, &se):
		res := smtpResult(err, where, name, "STARTTLS")
		res.Code = "4" + res.Code[1:]
		return &res
	}
	return &Result{Code: "4.7.5", Reply: "TLS with " + where + " failed: " + oneLine(err.Error()), Relay: where, RemoteMTA: name}
}

func (r *Relay) skipTLS(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.noTLS[addr]
	return ok && time.Since(t) < time.Hour
}

func (r *Relay) dial(ctx context.Context, ap netip.AddrPort, where string) (*timeoutConn, *Result) {
	d := net.Dialer{Timeout: r.o.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		reason := err.Error()
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			reason = oe.Err.Error()
		}
		return nil, &Result{Code: "4.4.1", Reply: "connect to " + where + ": " + reason}
	}
	return &timeoutConn{Conn: conn, timeout: r.o.CommandTimeout}, nil
}

// timeoutConn puts a deadline on every read and write, so that a peer
// that stops reading in the middle of DATA (where go-smtp sets none)
// cannot stall us; go-smtp's own deadlines are ignored in its favour.
type timeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(p)
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	return c.Conn.Write(p)
}

func (c *timeoutConn) SetDeadline(time.Time) error      { return nil }
func (c *timeoutConn) SetReadDeadline(time.Time) error  { return nil }
func (c *timeoutConn) SetWriteDeadline(time.Time) error { return nil }

func rcptOptions(rc Recipient) *smtp.RcptOptions {
	o := &smtp.RcptOptions{}
	if rc.Notify != "" {
		for _, n := range strings.Split(strings.ToUpper(rc.Notify), ",") {
			o.Notify = append(o.Notify, smtp.DSNNotify(strings.TrimSpace(n)))
		}
	}
	if typ, val, ok := strings.Cut(rc.ORCPT, ";"); ok && strings.EqualFold(typ, "rfc822") {
		if v, err := decodeXtext(val); err == nil {
			o.OriginalRecipientType = smtp.DSNAddressTypeRFC822
			o.OriginalRecipient = v
		}
	}
	return o
}

// decodeXtext undoes RFC 3461 §4's xtext: "+2B" is "+".
func decodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("bad xtext")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", err
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// smtpResult turns an error of go-smtp's client into a Result.
func smtpResult(err error, where, name, stage string) Result {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		code := "5.0.0"
		if se.Code < 500 {
			code = "4.0.0"
		}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode[0] >= 2 {
			code = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
			if (se.Code < 500) != (code[0] == '4') { // trust the basic code's class
				code = string("45"[se.Code/100-4]) + code[1:]
			}
		}
		reply := strconv.Itoa(se.Code)
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode[0] >= 2 {
			reply += " " + code
		}
		reply += " " + oneLine(se.Message)
		return Result{Code: code, Reply: fmt.Sprintf("host %s said: %s (in reply to %s command)", where, reply, stage),
			Relay: where, RemoteMTA: name, Diagnostic: reply}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Result{Code: "4.4.2", Reply: "conversation with " + where + " timed out while sending " + stage, Relay: where, RemoteMTA: name}
	}
	return Result{Code: "4.4.2", Reply: "lost connection with " + where + " while sending " + stage + ": " + oneLine(err.Error()), Relay: where, RemoteMTA: name}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
