package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/relay"
	"yubin/internal/relay/relaytest"
)

const body = "From: a@here.test\nTo: b@there.test\nSubject: hi\n\nhello\n"

func message(utf8 bool, rcpts ...string) *relay.Message {
	m := &relay.Message{From: "a@here.test", Body: func() io.Reader { return strings.NewReader(body) }, Size: int64(len(body)), SMTPUTF8: utf8}
	for _, r := range rcpts {
		m.Recipients = append(m.Recipients, relay.Recipient{Addr: r, Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;" + r})
	}
	return m
}

// Every routing case of the issue against a real DNS server and real SMTP
// servers on loopback, all on one port as remote_smtp_port makes them.
func TestRouting(t *testing.T) {
	port := relaytest.FreePort(t)
	at := func(ip string) string { return fmt.Sprintf("%s:%d", ip, port) }
	good := relaytest.NewSink(t, at("127.0.0.2"), nil)
	relaytest.Silent(t, at("127.0.0.3"), true) // drops every connection
	reject := relaytest.NewSink(t, at("127.0.0.4"), nil)
	reject.Rcpt = func(to string) error {
		return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "<"+to+">: no such user here")
	}
	temp := relaytest.NewSink(t, at("127.0.0.5"), nil)
	temp.Rcpt = func(string) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "try again later") }
	relaytest.Silent(t, at("127.0.0.6"), false) // stalls
	noUTF8 := relaytest.NewSink(t, at("127.0.0.7"), nil)
	noUTF8.NoSMTPUTF8()
	v6 := relaytest.NewSink(t, fmt.Sprintf("[::1]:%d", port), nil)
	cert, _ := relaytest.Cert(t, "mx.tls.test")
	withTLS := relaytest.NewSink(t, at("127.0.0.8"), cert)

	d := relaytest.NewDNS(t,
		"a.test. MX 10 mx1.a.test.", "mx1.a.test. A 127.0.0.2",
		"pref.test. MX 20 mxb.pref.test.", "pref.test. MX 10 mxa.pref.test.",
		"mxa.pref.test. A 127.0.0.3", "mxb.pref.test. A 127.0.0.2",
		"implicit.test. A 127.0.0.2",
		"nullmx.test. MX 0 .",
		"cname.test. CNAME real.test.", "real.test. MX 10 mx1.a.test.",
		"v6only.test. MX 10 mx6.v6only.test.", "mx6.v6only.test. AAAA ::1",
		"reject.test. MX 10 mx.reject.test.", "mx.reject.test. A 127.0.0.4",
		"temp.test. MX 10 mx.temp.test.", "mx.temp.test. A 127.0.0.5",
		"stall.test. MX 10 mx.stall.test.", "mx.stall.test. A 127.0.0.6",
		"noutf8.test. MX 10 mx.noutf8.test.", "mx.noutf8.test. A 127.0.0.7",
		"tls.test. MX 10 mx.tls.test.", "mx.tls.test. A 127.0.0.8",
		"nohost.test. MX 10 missing.nohost.test.",
	)
	d.ServFail("servfail.test")
	r := relay.New(relay.Options{
		Hostname: "mx.here.test", Resolver: &relay.Resolver{Servers: []string{d.Addr}, Timeout: time.Second},
		Port: port, DialTimeout: time.Second, CommandTimeout: time.Second, DataTimeout: 2 * time.Second,
	})

	for _, tc := range []struct {
		name, domain string
		utf8         bool
		code         string // want this code (prefix)
		reply        string // and this in the reply
		sink         *relaytest.Sink
	}{
		{"MX", "a.test", false, "2.0.0", "250", good},
		{"preference order, first MX drops", "pref.test", false, "2.0.0", "", good},
		{"implicit MX", "implicit.test", false, "2.0.0", "", good},
		{"null MX", "nullmx.test", false, "5.1.10", "does not accept mail", nil},
		{"NXDOMAIN", "nx.test", false, "5.1.2", "not found", nil},
		{"SERVFAIL", "servfail.test", false, "4.4.3", "", nil},
		{"CNAME", "cname.test", false, "2.0.0", "", good},
		{"IPv6-only MX", "v6only.test", false, "2.0.0", "", v6},
		{"550", "reject.test", false, "5.1.1", "550 5.1.1 <x@reject.test>: no such user here", nil},
		{"451", "temp.test", false, "4.3.0", "451 4.3.0 try again later", nil},
		{"stalled server", "stall.test", false, "4.4.2", "timed out", nil},
		{"SMTPUTF8 missing", "noutf8.test", true, "5.6.7", "SMTPUTF8", nil},
		{"MX without address", "nohost.test", false, "4.", "", nil},
		{"STARTTLS", "tls.test", false, "2.0.0", "", withTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := 0
			if tc.sink != nil {
				before = len(tc.sink.Messages())
			}
			start := time.Now()
			res := r.Deliver(context.Background(), tc.domain, message(tc.utf8, "x@"+tc.domain))
			if len(res) != 1 || !strings.HasPrefix(res[0].Code, tc.code) || !strings.Contains(res[0].Reply, tc.reply) {
				t.Fatalf("got %+v, want %s %q", res, tc.code, tc.reply)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v: a timeout is not applied", time.Since(start))
			}
			if tc.sink != nil {
				msgs := tc.sink.Messages()
				if len(msgs) != before+1 {
					t.Fatalf("sink has %d messages, want %d", len(msgs), before+1)
				}
				m := msgs[len(msgs)-1]
				if !bytes.Equal(m.Data, []byte(body)) || m.From != "a@here.test" {
					t.Errorf("sink got from %q:\n%s", m.From, m.Data)
				}
				if o := m.Rcpt[0]; len(o.Notify) != 2 || o.OriginalRecipient != "x@"+tc.domain {
					t.Errorf("DSN parameters not passed: %+v", o)
				}
			}
		})
	}
}

// All recipients of one destination go in one transaction; each keeps its
// own outcome.
func TestOneTransactionPerDestination(t *testing.T) {
	port := relaytest.FreePort(t)
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	sink.Rcpt = func(to string) error {
		if strings.HasPrefix(to, "bad") {
			return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no")
		}
		return nil
	}
	d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2")
	r := relay.New(relay.Options{Hostname: "h.test", Resolver: &relay.Resolver{Servers: []string{d.Addr}}, Port: port})
	res := r.Deliver(context.Background(), "a.test", message(false, "one@a.test", "bad@a.test", "two@a.test"))
	if !res[0].Delivered() || res[1].Code != "5.1.1" || !res[2].Delivered() {
		t.Fatalf("results %+v", res)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || len(msgs[0].To) != 2 || sink.Conns() > 2 {
		t.Fatalf("%d messages, %d connections; want 1 message to 2 recipients", len(msgs), sink.Conns())
	}
}

// The smarthost: AUTH over verified STARTTLS, once for two messages on one
// connection; a smarthost name that does not resolve defers, never bounces.
func TestSmarthost(t *testing.T) {
	port := relaytest.FreePort(t)
	cert, pool := relaytest.Cert(t, "smarthost.test")
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), cert)
	sink.AuthUser, sink.AuthPass = "cron@box", "s3cret:with:colons"
	d := relaytest.NewDNS(t, "smarthost.test. A 127.0.0.2")
	opts := relay.Options{Hostname: "box.test", Resolver: &relay.Resolver{Servers: []string{d.Addr}}, Port: 25,
		RelayHost: fmt.Sprintf("[smarthost.test]:%d", port), Auth: &relay.Credentials{User: "cron@box", Password: "s3cret:with:colons"},
		RootCAs: pool, CommandTimeout: 2 * time.Second}
	r := relay.New(opts)
	for range 2 {
		if res := r.Deliver(context.Background(), "anywhere.example", message(false, "x@anywhere.example")); !res[0].Delivered() {
			t.Fatalf("via smarthost: %+v", res)
		}
	}
	r.Close()
	if len(sink.Messages()) != 2 || sink.Conns() != 1 || !sink.Messages()[1].TLS {
		t.Fatalf("%d messages over %d connections, want 2 over 1, inside TLS", len(sink.Messages()), sink.Conns())
	}

	opts.Auth.Password = "wrong"
	res := relay.New(opts).Deliver(context.Background(), "anywhere.example", message(false, "x@anywhere.example"))
	if !res[0].Temporary() {
		t.Errorf("refused login should defer: %+v", res)
	}

	opts.Auth.Password = "s3cret:with:colons"
	opts.RelayHost = "[gone.test]:25"
	res = relay.New(opts).Deliver(context.Background(), "anywhere.example", message(false, "x@anywhere.example"))
	if !res[0].Temporary() || !strings.Contains(res[0].Reply, "relay_host") {
		t.Errorf("unresolvable smarthost should defer: %+v", res)
	}
}
