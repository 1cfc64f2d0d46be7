package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"yubin/internal/relay"
	"yubin/internal/relay/relaytest"
)

// Each TLS level against servers without STARTTLS, with a certificate the
// test's CA signed for the MX name, with one nobody signed, and with a
// signed one for another name; policy entries for a domain and for the
// subdomains of one.
func TestTLSPolicy(t *testing.T) {
	port := relaytest.FreePort(t)
	at := func(ip string) string { return fmt.Sprintf("%s:%d", ip, port) }
	good, pool := relaytest.Cert(t, "mx.good.test")
	untrusted, _ := relaytest.Cert(t, "mx.untrusted.test")
	other, _ := relaytest.Cert(t, "elsewhere.test")
	pool.AddCert(other.Leaf)
	sinks := map[string]*relaytest.Sink{
		"plain.test":     relaytest.NewSink(t, at("127.0.0.2"), nil),
		"good.test":      relaytest.NewSink(t, at("127.0.0.3"), good),
		"untrusted.test": relaytest.NewSink(t, at("127.0.0.4"), untrusted),
		"wrongname.test": relaytest.NewSink(t, at("127.0.0.5"), other),
	}
	d := relaytest.NewDNS(t,
		"plain.test. MX 10 mx.plain.test.", "mx.plain.test. A 127.0.0.2",
		"good.test. MX 10 mx.good.test.", "mx.good.test. A 127.0.0.3",
		"untrusted.test. MX 10 mx.untrusted.test.", "mx.untrusted.test. A 127.0.0.4",
		"wrongname.test. MX 10 mx.wrongname.test.", "mx.wrongname.test. A 127.0.0.5",
	)
	for _, tc := range []struct {
		name   string
		domain string
		policy map[string]relay.TLSLevel
		code   string // want this code
		reply  string // and this in the reply
		tls    bool   // the message came inside TLS (when delivered)
	}{
		{"none: clear though offered", "good.test", map[string]relay.TLSLevel{"good.test": relay.TLSNone}, "2.0.0", "", false},
		{"may (default): clear when not offered", "plain.test", nil, "2.0.0", "", false},
		{"may: TLS when offered", "good.test", nil, "2.0.0", "", true},
		{"may: unverified", "untrusted.test", nil, "2.0.0", "", true},
		{"encrypt: not offered", "plain.test", map[string]relay.TLSLevel{"plain.test": relay.TLSEncrypt}, "4.7.4", "TLS is required, but was not offered", false},
		{"encrypt: unverified", "untrusted.test", map[string]relay.TLSLevel{"untrusted.test": relay.TLSEncrypt}, "2.0.0", "", true},
		{"verify: good certificate", "good.test", map[string]relay.TLSLevel{"good.test": relay.TLSVerify}, "2.0.0", "", true},
		{"verify: unknown CA", "untrusted.test", map[string]relay.TLSLevel{"untrusted.test": relay.TLSVerify}, "4.7.5", "certificate", false},
		{"verify: other name", "wrongname.test", map[string]relay.TLSLevel{"wrongname.test": relay.TLSVerify}, "4.7.5", "mx.wrongname.test", false},
		{"verify: not offered", "plain.test", map[string]relay.TLSLevel{"plain.test": relay.TLSVerify}, "4.7.4", "not offered", false},
		{".parent matches subdomains", "plain.test", map[string]relay.TLSLevel{".test": relay.TLSEncrypt}, "4.7.4", "", false},
		{"a domain is not its subdomains", "plain.test", map[string]relay.TLSLevel{"test": relay.TLSEncrypt}, "2.0.0", "", false},
		{"the domain before its parent", "plain.test", map[string]relay.TLSLevel{".test": relay.TLSEncrypt, "plain.test": relay.TLSMay}, "2.0.0", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRelay(d, port, relay.Options{TLSPolicy: tc.policy, RootCAs: pool, CacheTime: -1})
			defer r.Close()
			sink := sinks[tc.domain]
			before := len(sink.Messages())
			res := r.Deliver(context.Background(), tc.domain, message(false, "x@"+tc.domain))
			t.Logf("%s %s", res[0].Code, res[0].Reply)
			if res[0].Code != tc.code || !strings.Contains(res[0].Reply, tc.reply) {
				t.Fatalf("got %+v, want %s %q", res[0], tc.code, tc.reply)
			}
			msgs := sink.Messages()
			if !res[0].Delivered() {
				if len(msgs) != before {
					t.Fatalf("the sink got the message in clear")
				}
				return
			}
			if len(msgs) != before+1 || msgs[len(msgs)-1].TLS != tc.tls {
				t.Fatalf("sink has %d new messages, TLS %v; want 1, TLS %v", len(msgs)-before, len(msgs) > before && msgs[len(msgs)-1].TLS, tc.tls)
			}
		})
	}
}
