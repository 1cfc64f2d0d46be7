// Package relaytest provides what relay tests talk to, on loopback only: a
// DNS server (miekg/dns) serving records given in zone-file syntax, and
// "remote" SMTP servers (go-smtp) that accept, refuse with 4xx or 5xx, drop
// the connection, close it after a message or stall, and count their TCP
// connections. The runner's tests and test/ use it too.
package relaytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/miekg/dns"
)

// DNS is a DNS server on 127.0.0.1 answering from its records.
type DNS struct {
	Addr string // "127.0.0.1:port"
	mu   sync.Mutex
	rrs  []dns.RR
	fail map[string]bool // names answered with SERVFAIL
	drop map[string]bool // names never answered (a timeout)
}

// NewDNS starts a DNS server with records in zone-file syntax ("a.test. MX
// 10 mx.a.test."); it stops at the end of the test.
func NewDNS(t testing.TB, records ...string) *DNS {
	t.Helper()
	d := &DNS{fail: map[string]bool{}, drop: map[string]bool{}}
	d.Add(t, records...)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

// Add adds records.
func (d *DNS) Add(t testing.TB, records ...string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		d.rrs = append(d.rrs, rr)
	}
}

// ServFail makes every question about name get SERVFAIL.
func (d *DNS) ServFail(name string) {
	d.mu.Lock()
	d.fail[dns.Fqdn(strings.ToLower(name))] = true
	d.mu.Unlock()
}

// Drop makes every question about name go unanswered.
func (d *DNS) Drop(name string) {
	d.mu.Lock()
	d.drop[dns.Fqdn(strings.ToLower(name))] = true
	d.mu.Unlock()
}

// serve answers like a recursive resolver: the CNAME chain and the records
// of the type asked at its end; NXDOMAIN for names it has nothing about.
func (d *DNS) serve(w dns.ResponseWriter, q *dns.Msg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	name := strings.ToLower(q.Question[0].Name)
	qt := q.Question[0].Qtype
	if d.drop[name] {
		return
	}
	if d.fail[name] {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	for hop := 0; hop < 10; hop++ {
		known, cname := false, ""
		for _, rr := range d.rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			known = true
			if h.Rrtype == qt {
				m.Answer = append(m.Answer, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				m.Answer = append(m.Answer, rr)
				cname = strings.ToLower(c.Target)
			}
		}
		if !known && hop == 0 {
			m.Rcode = dns.RcodeNameError
		}
		if cname == "" || qt == dns.TypeCNAME {
			break
		}
		name = cname
	}
	w.WriteMsg(m)
}

// Message is one message a Sink received.
type Message struct {
	From string
	To   []string
	Data []byte
	Mail *smtp.MailOptions
	Rcpt []*smtp.RcptOptions
	TLS  bool // it came inside STARTTLS
}

// Sink is a "remote" SMTP server.
type Sink struct {
	Addr string // "127.0.0.x:port"
	// Rcpt decides each recipient (nil: accept); Data the whole message.
	// They may be set before the first connection.
	Rcpt func(to string) error
	Data func(m *Message) error
	// Auth, when set, requires AUTH PLAIN with this user and password.
	AuthUser, AuthPass string
	// CloseAfterData closes each connection right after its first
	// message's reply, as a server whose idle timeout is short.
	CloseAfterData bool

	mu       sync.Mutex
	messages []*Message
	conns    int
	live     map[*countedConn]bool
	server   *smtp.Server
}

// Reply is an SMTP error reply for Rcpt and Data.
func Reply(code int, enhanced smtp.EnhancedCode, text string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: text}
}

// NewSink starts an SMTP server on addr ("127.0.0.2:2525"), with STARTTLS
// when cert is not nil; it stops at the end of the test.
func NewSink(t testing.TB, addr string, cert *tls.Certificate) *Sink {
	t.Helper()
	s := &Sink{live: map[*countedConn]bool{}}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "sink.test"
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = false
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	s.server = srv
	go srv.Serve(countingListener{ln, s})
	t.Cleanup(func() { srv.Close() })
	return s
}

// NoSMTPUTF8 stops advertising SMTPUTF8.
func (s *Sink) NoSMTPUTF8() { s.server.EnableSMTPUTF8 = false }

// Messages returns what the sink has accepted so far.
func (s *Sink) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Message(nil), s.messages...)
}

// Conns counts the connections made to the sink.
func (s *Sink) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Open counts the connections to the sink not yet closed.
func (s *Sink) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// CloseAll closes every open connection, as a server that restarts or
// drops idle clients; it goes on listening.
func (s *Sink) CloseAll() {
	s.mu.Lock()
	var cs []*countedConn
	for c := range s.live {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

type session struct {
	s      *Sink
	conn   *smtp.Conn
	m      *Message
	authed bool
	done   bool // a message was accepted
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.AuthUser == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.AuthUser || pass != ss.s.AuthPass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.s.AuthUser != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	if ss.m != nil {
		// RFC 5321 §4.1.4, as Postfix answers; go-smtp lets it pass.
		return Reply(503, smtp.EnhancedCode{5, 5, 1}, "nested MAIL command")
	}
	ss.m = &Message{From: from, Mail: opts}
	return nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	f := ss.s.Rcpt
	ss.s.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.m.To = append(ss.m.To, to)
	ss.m.Rcpt = append(ss.m.Rcpt, opts)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.m.Data = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	_, ss.m.TLS = ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	f := ss.s.Data
	ss.s.mu.Unlock()
	if f != nil {
		if err := f(ss.m); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, ss.m)
	ss.s.mu.Unlock()
	ss.done = true
	return nil
}

// Reset comes after EHLO, RSET and the reply to DATA.
func (ss *session) Reset() {
	ss.m = nil
	ss.s.mu.Lock()
	closing := ss.done && ss.s.CloseAfterData
	ss.s.mu.Unlock()
	if closing {
		// Not ss.conn.Close: go-smtp holds the lock it takes.
		ss.conn.Conn().Close()
	}
}

func (ss *session) Logout() error { return nil }

// countingListener counts the sink's TCP connections (go-smtp makes a
// session per EHLO and again after STARTTLS: those are not connections).
type countingListener struct {
	net.Listener
	s *Sink
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	l.s.conns++
	l.s.live[cc] = true
	l.s.mu.Unlock()
	return cc, nil
}

type countedConn struct {
	net.Conn
	s    *Sink
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.live, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// SetRcpt replaces the recipient policy while the sink runs.
func (s *Sink) SetRcpt(f func(to string) error) {
	s.mu.Lock()
	s.Rcpt = f
	s.mu.Unlock()
}

// Silent is a server that accepts connections and never says a word (a
// stalled peer), or, with drop, closes each connection at once.
func Silent(t testing.TB, addr string, drop bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if drop {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// FreePort finds a TCP port free on 127.0.0.1, for servers that must share
// one port (remote_smtp_port) on several loopback addresses.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Cert makes a self-signed certificate for the given host names and IP
// addresses, and a pool that trusts it.
func Cert(t testing.TB, names ...string) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, pool
}
