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
// EHLO (HELO when EHLO is refused with 500/502), STARTTLS when offered
// (opportunistic: not verified, and a failed handshake is retried without
// TLS; with AUTH to a smarthost TLS is required and verified unless
// Options.InsecureTLS), AUTH PLAIN or LOGIN from relay_auth_file (smarthost
// only), MAIL FROM with SIZE, BODY=8BITMIME, SMTPUTF8 and the DSN
// parameters RET and ENVID when the server has the extensions, one RCPT
// TO per recipient with NOTIFY and ORCPT, DATA. All recipients for one
// destination go in one transaction. A message that needs SMTPUTF8, sent to
// a server without it, fails with 5.6.7 (RFC 6531 §3.4).
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
	// RootCAs verifies the smarthost's certificate; nil: the system's.
	RootCAs *x509.CertPool
	// InsecureTLS skips that verification.
	InsecureTLS bool
}

// Credentials is a user name and password for AUTH.
type Credentials struct {
	User, Password string
}

// Relay delivers messages to remote destinations. It is safe for
// concurrent use.
type Relay struct {
	o     Options
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
	return &Relay{o: o, noTLS: map[string]time.Time{}}
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

// route returns the hosts to try for domain and the port to dial.
func (r *Relay) route(ctx context.Context, domain string) ([]Host, int, error) {
	if r.o.RelayHost == "" {
		hosts, err := r.o.Resolver.LookupMX(ctx, domain)
		return hosts, r.o.Port, err
	}
	host, port, noMX := r.o.RelayHost, r.o.Port, false
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
			if hostErr := r.attempt(ctx, h.Name, netip.AddrPortFrom(a, uint16(port)), msg, open, results); hostErr != nil {
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
// filling their results. A non-nil *Result is a failure of the whole
// connection (connect, greeting, TLS, AUTH, MAIL) to record for all of them
// unless another host does better.
func (r *Relay) attempt(ctx context.Context, name string, ap netip.AddrPort, msg *Message, open []int, results []Result) *Result {
	where := fmt.Sprintf("%s[%s]:%d", name, ap.Addr(), ap.Port())
	c, tlsOn, fail := r.connect(ctx, name, ap, where)
	if fail != nil {
		return fail
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	if r.o.Auth != nil && r.o.RelayHost != "" {
		if !tlsOn {
			return &Result{Code: "4.7.10", Reply: "TLS is required for AUTH to " + where + " but the server offers no STARTTLS", Relay: where}
		}
		var a sasl.Client
		switch {
		case c.SupportsAuth("PLAIN"):
			a = sasl.NewPlainClient("", r.o.Auth.User, r.o.Auth.Password)
		case c.SupportsAuth("LOGIN"):
			a = sasl.NewLoginClient(r.o.Auth.User, r.o.Auth.Password)
		default:
			return &Result{Code: "4.7.0", Reply: where + " offers no AUTH PLAIN or LOGIN", Relay: where}
		}
		if err := c.Auth(a); err != nil {
			// A refused login is our configuration's fault: wait for a fix.
			res := smtpResult(err, where, name, "AUTH")
			res.Code = "4" + res.Code[1:]
			return &res
		}
	}
	if msg.SMTPUTF8 {
		if ok, _ := c.Extension("SMTPUTF8"); !ok {
			for _, i := range open {
				results[i] = Result{Code: "5.6.7", Reply: where + " does not support SMTPUTF8, which the message needs", Relay: where, RemoteMTA: name}
			}
			c.Quit()
			return nil
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
		if strings.HasPrefix(res.Code, "5") {
			for _, i := range open {
				results[i] = res
			}
			c.Quit()
			return nil
		}
		return &res
	}
	var accepted []int
	for _, i := range open {
		rc := msg.Recipients[i]
		if err := c.Rcpt(rc.Addr, rcptOptions(rc)); err != nil {
			results[i] = smtpResult(err, where, name, "RCPT TO")
			if isNetErr(err) {
				return &results[i]
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		c.Quit()
		return nil
	}
	res := r.data(c, msg, where, name)
	for _, i := range accepted {
		results[i] = res
	}
	c.Quit()
	return nil
}

// data sends the message and returns the server's verdict on it.
func (r *Relay) data(c *smtp.Client, msg *Message, where, name string) Result {
	w, err := c.Data()
	if err != nil {
		return smtpResult(err, where, name, "DATA")
	}
	if _, err := io.Copy(w, msg.Body()); err != nil {
		w.Close()
		return Result{Code: "4.4.2", Reply: "lost connection with " + where + " while sending message body: " + err.Error(), Relay: where, RemoteMTA: name}
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return smtpResult(err, where, name, "end of DATA")
	}
	reply := "250 " + oneLine(resp.StatusText)
	return Result{Code: "2.0.0", Reply: reply, Relay: where, RemoteMTA: name, Diagnostic: reply}
}

// connect dials ap and speaks up to MAIL: greeting, EHLO, STARTTLS.
//
// go-smtp's Client cannot start TLS on a session it has opened, only in
// NewClientStartTLS, which greets with "EHLO localhost" and fails when
// STARTTLS is not offered. So a first connection tries that (then EHLO
// again with our name inside TLS, and a NOOP that makes the handshake
// happen now rather than at MAIL); when the server has no STARTTLS, or it or
// the handshake fails, a second connection goes on without TLS, as
// Postfix's "may" level does, and the address is remembered for an hour so
// that the next messages dial once.
func (r *Relay) connect(ctx context.Context, name string, ap netip.AddrPort, where string) (*smtp.Client, bool, *Result) {
	mustTLS := r.o.Auth != nil && r.o.RelayHost != ""
	if mustTLS || !r.skipTLS(ap.String()) {
		conn, fail := r.dial(ctx, ap, where)
		if fail != nil {
			return nil, false, fail
		}
		cfg := &tls.Config{ServerName: name, InsecureSkipVerify: !mustTLS || r.o.InsecureTLS, RootCAs: r.o.RootCAs}
		c, err := smtp.NewClientStartTLS(conn, cfg)
		if err == nil {
			c.CommandTimeout, c.SubmissionTimeout = r.o.CommandTimeout, r.o.DataTimeout
			if err = c.Hello(r.o.Hostname); err == nil {
				err = c.Noop()
			}
			if err == nil {
				return c, true, nil
			}
			c.Close()
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			res := smtpResult(err, where, name, "STARTTLS")
			return nil, false, &res
		}
		if mustTLS {
			res := smtpResult(err, where, name, "STARTTLS")
			res.Code = "4" + res.Code[1:]
			if res.Code == "4.4.2" {
				res.Reply = "TLS with " + where + " failed: " + oneLine(err.Error())
			}
			return nil, false, &res
		}
		r.mu.Lock()
		r.noTLS[ap.String()] = time.Now()
		r.mu.Unlock()
	}
	conn, fail := r.dial(ctx, ap, where)
	if fail != nil {
		return nil, false, fail
	}
	c := r.newClient(conn)
	if err := c.Hello(r.o.Hostname); err != nil {
		c.Close()
		res := smtpResult(err, where, name, "EHLO")
		return nil, false, &res
	}
	// Hello only names us; the greeting and EHLO happen at the first
	// command. Let their failure be seen here, as a failure of this host.
	if err := c.Noop(); err != nil {
		c.Close()
		res := smtpResult(err, where, name, "EHLO")
		return nil, false, &res
	}
	return c, false, nil
}

func (r *Relay) skipTLS(addr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.noTLS[addr]
	return ok && time.Since(t) < time.Hour
}

func (r *Relay) dial(ctx context.Context, ap netip.AddrPort, where string) (net.Conn, *Result) {
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

func (r *Relay) newClient(conn net.Conn) *smtp.Client {
	c := smtp.NewClient(conn)
	c.CommandTimeout = r.o.CommandTimeout
	c.SubmissionTimeout = r.o.DataTimeout
	return c
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

func isNetErr(err error) bool {
	var se *smtp.SMTPError
	return err != nil && !errors.As(err, &se)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
