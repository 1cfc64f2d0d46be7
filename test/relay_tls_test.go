package test

import (
	"strings"
	"testing"

	"yubin/internal/queue"
)

// relay_tls_policy reaches the runner: "encrypt" for a server without
// STARTTLS defers the mail with 4.7.4 and sends nothing in clear.
func TestRelayTLSPolicyEncryptDefers(t *testing.T) {
	s, sink, _ := relaySystem(t, "relay_tls_policy = there.test encrypt")
	if r := s.run("Subject: x\n\nbody\n", "sendmail", "carol@there.test"); r.code != 0 {
		t.Fatalf("sendmail: %d %s", r.code, r.stderr)
	}
	if r := s.run("", "sendmail", "-q"); r.code != 0 {
		t.Fatalf("sendmail -q: %d %s", r.code, r.stderr)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("the sink got %d messages in clear", n)
	}
	q := s.queue()
	if len(q) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q))
	}
	if rc := q[0].Recipients[0]; rc.State != queue.Deferred || !strings.Contains(rc.LastReply, "TLS is required") {
		t.Fatalf("recipient %+v, want deferred for want of TLS", rc)
	}
}
