package relay_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/relay"
	"yubin/internal/relay/relaytest"
)

// newRelay is a Relay for MX routing with the test DNS server and short
// timeouts; o's other fields are kept.
func newRelay(d *relaytest.DNS, port int, o relay.Options) *relay.Relay {
	o.Hostname = "mx.here.test"
	o.Resolver = &relay.Resolver{Servers: []string{d.Addr}, Timeout: time.Second}
	o.Port, o.DialTimeout, o.CommandTimeout, o.DataTimeout = port, time.Second, 2*time.Second, 2*time.Second
	return relay.New(o)
}

// eventually polls cond for up to 5 s: a server sees a close only after
// the client has made it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 5 s", what)
		}
	}
}

// Messages one after another to one server share one connection, one
// transaction each, with STARTTLS and without.
func TestConnectionReuse(t *testing.T) {
	const n = 5
	cert, _ := relaytest.Cert(t, "mx.a.test")
	for _, tc := range []struct {
		name  string
		cert  bool
		level relay.TLSLevel
		tls   bool
	}{
		{"STARTTLS", true, relay.TLSMay, true},
		{"clear", false, relay.TLSNone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := relaytest.FreePort(t)
			var sink *relaytest.Sink
			if tc.cert {
				sink = relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), cert)
			} else {
				sink = relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
			}
			d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2")
			r := newRelay(d, port, relay.Options{TLSPolicy: map[string]relay.TLSLevel{"a.test": tc.level}, CacheTime: time.Minute})
			defer r.Close()
			for i := range n {
				rcpt := fmt.Sprintf("r%d@a.test", i)
				if res := r.Deliver(context.Background(), "a.test", message(false, rcpt)); !res[0].Delivered() {
					t.Fatalf("message %d: %+v", i, res)
				}
			}
			msgs := sink.Messages()
			if len(msgs) != n || sink.Conns() != 1 {
				t.Fatalf("%d messages over %d connections, want %d over 1", len(msgs), sink.Conns(), n)
			}
			for i, m := range msgs {
				if want := fmt.Sprintf("r%d@a.test", i); len(m.To) != 1 || m.To[0] != want || m.TLS != tc.tls {
					t.Errorf("message %d to %v (TLS %v), want only %s (TLS %v)", i, m.To, m.TLS, want, tc.tls)
				}
				if o := m.Rcpt[0]; len(o.Notify) != 2 || o.OriginalRecipient != m.To[0] {
					t.Errorf("message %d: DSN parameters not passed: %+v", i, o)
				}
			}
		})
	}
}

// A server that closes the connection after each message (an idle
// timeout shorter than ours) costs a new connection per message, not a
// deferral; in clear and inside TLS.
func TestReuseAfterServerClosed(t *testing.T) {
	const n = 3
	cert, _ := relaytest.Cert(t, "mx.a.test")
	for _, tc := range []struct {
		name  string
		cert  *tls.Certificate
		level relay.TLSLevel
	}{
		{"clear", nil, relay.TLSNone},
		{"STARTTLS", cert, relay.TLSEncrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := relaytest.FreePort(t)
			sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), tc.cert)
			sink.CloseAfterData = true
			d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2")
			r := newRelay(d, port, relay.Options{TLSPolicy: map[string]relay.TLSLevel{"a.test": tc.level}, CacheTime: time.Minute})
			defer r.Close()
			for i := range n {
				if res := r.Deliver(context.Background(), "a.test", message(false, "x@a.test")); res[0].Code != "2.0.0" {
					t.Fatalf("message %d: %+v", i, res)
				}
			}
			if len(sink.Messages()) != n || sink.Conns() != n {
				t.Fatalf("%d messages over %d connections, want %d over %d", len(sink.Messages()), sink.Conns(), n, n)
			}
		})
	}
}

// A connection reset after a failed transaction and then closed by the
// server is redialled like any other; a message that needs SMTPUTF8 is not
// refused for want of an EHLO on the dead connection.
func TestResetConnectionClosedByServer(t *testing.T) {
	port := relaytest.FreePort(t)
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	sink.SetRcpt(func(to string) error {
		if to == "busy@a.test" {
			return relaytest.Reply(451, smtp.EnhancedCode{4, 2, 1}, "busy")
		}
		return nil
	})
	d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2")
	r := newRelay(d, port, relay.Options{TLSPolicy: map[string]relay.TLSLevel{"a.test": relay.TLSNone}, CacheTime: time.Minute})
	defer r.Close()
	if res := r.Deliver(context.Background(), "a.test", message(false, "busy@a.test")); res[0].Code != "4.2.1" {
		t.Fatalf("first message: %+v", res)
	}
	sink.CloseAll()
	eventually(t, "closed by the server", func() bool { return sink.Open() == 0 })
	if res := r.Deliver(context.Background(), "a.test", message(true, "x@a.test")); res[0].Code != "2.0.0" {
		t.Fatalf("SMTPUTF8 message: %+v", res)
	}
	if msgs := sink.Messages(); len(msgs) != 1 || !msgs[0].Mail.UTF8 || sink.Conns() != 2 {
		t.Fatalf("%d messages over %d connections, want 1 with SMTPUTF8 over 2", len(msgs), sink.Conns())
	}
}

// After a transaction that failed half way the connection is reset (RSET)
// or closed, never reused with the transaction open: the sink refuses a
// second MAIL in one transaction (503, as Postfix), so the next message
// would fail.
func TestReuseAfterFailedTransaction(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rcpt  func(to string) error
		data  func(m *relaytest.Message) error
		conns int // for both messages
	}{
		{"every RCPT 451: RSET, reused",
			func(to string) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 2, 1}, "busy") }, nil, 1},
		{"every RCPT 550: RSET, reused",
			func(to string) error { return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no") }, nil, 1},
		{"451 after DATA: transaction over, reused",
			nil, func(*relaytest.Message) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "later") }, 1},
		{"421 to RCPT: closed",
			func(to string) error { return relaytest.Reply(421, smtp.EnhancedCode{4, 4, 2}, "closing") }, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := relaytest.FreePort(t)
			sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
			var failing atomic.Bool // the first message only
			failing.Store(true)
			sink.SetRcpt(func(to string) error {
				if failing.Load() && tc.rcpt != nil {
					return tc.rcpt(to)
				}
				return nil
			})
			sink.Data = func(m *relaytest.Message) error {
				if failing.Load() && tc.data != nil {
					return tc.data(m)
				}
				return nil
			}
			d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2")
			r := newRelay(d, port, relay.Options{TLSPolicy: map[string]relay.TLSLevel{"a.test": relay.TLSNone}, CacheTime: time.Minute})
			defer r.Close()
			if res := r.Deliver(context.Background(), "a.test", message(false, "one@a.test", "two@a.test")); res[0].Delivered() || res[1].Delivered() {
				t.Fatalf("first message: %+v", res)
			}
			failing.Store(false)
			res := r.Deliver(context.Background(), "a.test", message(false, "three@a.test"))
			if !res[0].Delivered() {
				t.Fatalf("second message: %+v", res)
			}
			msgs := sink.Messages()
			if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "three@a.test" || sink.Conns() != tc.conns {
				var to [][]string
				for _, m := range msgs {
					to = append(to, m.To)
				}
				t.Fatalf("sink has messages to %v over %d connections; want one to three@a.test over %d", to, sink.Conns(), tc.conns)
			}
		})
	}
}

// Idle connections end (QUIT) after the cache time, when the cache is
// full, and at Close.
func TestIdleConnectionsClosed(t *testing.T) {
	port := relaytest.FreePort(t)
	a := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	b := relaytest.NewSink(t, fmt.Sprintf("127.0.0.3:%d", port), nil)
	d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2", "b.test. MX 10 mx.b.test.", "mx.b.test. A 127.0.0.3")
	none := map[string]relay.TLSLevel{"a.test": relay.TLSNone, "b.test": relay.TLSNone}
	send := func(r *relay.Relay, domain string) {
		t.Helper()
		if res := r.Deliver(context.Background(), domain, message(false, "x@"+domain)); !res[0].Delivered() {
			t.Fatalf("to %s: %+v", domain, res)
		}
	}

	r := newRelay(d, port, relay.Options{TLSPolicy: none, CacheTime: 50 * time.Millisecond})
	send(r, "a.test")
	eventually(t, "closed after the cache time", func() bool { return a.Open() == 0 })
	send(r, "a.test")
	if a.Conns() != 2 {
		t.Errorf("%d connections, want a new one after the cache time", a.Conns())
	}
	r.Close()

	r = newRelay(d, port, relay.Options{TLSPolicy: none, CacheTime: time.Minute, CacheSize: 1})
	send(r, "a.test")
	send(r, "b.test") // evicts a's
	eventually(t, "closed when evicted", func() bool { return a.Open() == 0 })
	if b.Open() != 1 {
		t.Errorf("b has %d open connections, want its cached one", b.Open())
	}
	r.Close()
	eventually(t, "closed at Close", func() bool { return b.Open() == 0 })
	send(r, "b.test") // still delivers after Close, and does not cache
	eventually(t, "closed after use once closed", func() bool { return b.Open() == 0 })
	if a.Conns() != 3 || b.Conns() != 2 {
		t.Errorf("%d and %d connections, want 3 and 2", a.Conns(), b.Conns())
	}
}

// Concurrent deliveries to one server share connections safely: each
// message once, no more connections than deliveries at a time.
func TestConcurrentReuse(t *testing.T) {
	const workers, each = 4, 10
	port := relaytest.FreePort(t)
	sink := relaytest.NewSink(t, fmt.Sprintf("127.0.0.2:%d", port), nil)
	d := relaytest.NewDNS(t, "a.test. MX 10 mx.a.test.", "mx.a.test. A 127.0.0.2")
	r := newRelay(d, port, relay.Options{TLSPolicy: map[string]relay.TLSLevel{"a.test": relay.TLSNone}, CacheTime: time.Minute})
	defer r.Close()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if res := r.Deliver(context.Background(), "a.test", message(false, fmt.Sprintf("w%d-%d@a.test", w, i))); !res[0].Delivered() {
					t.Errorf("worker %d message %d: %+v", w, i, res)
				}
			}
		})
	}
	wg.Wait()
	if len(sink.Messages()) != workers*each || sink.Conns() > workers {
		t.Fatalf("%d messages over %d connections, want %d over at most %d", len(sink.Messages()), sink.Conns(), workers*each, workers)
	}
}
