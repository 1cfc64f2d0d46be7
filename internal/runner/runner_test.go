package runner_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"yubin/internal/queue"
	"yubin/internal/relay"
	"yubin/internal/relay/relaytest"
	"yubin/internal/runner"
)

// world is a queue, a DNS server and one sink per domain, on one port.
type world struct {
	t     *testing.T
	q     *queue.Queue
	dns   *relaytest.DNS
	port  int
	sinks map[string]*relaytest.Sink
	opts  runner.Options
}

func newWorld(t *testing.T, domains ...string) *world {
	w := &world{t: t, q: queue.New(filepath.Join(t.TempDir(), "queue")), port: relaytest.FreePort(t), sinks: map[string]*relaytest.Sink{}}
	if err := w.q.Init(-1, -1); err != nil {
		t.Fatal(err)
	}
	w.dns = relaytest.NewDNS(t)
	for i, d := range domains {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		w.dns.Add(t, d+". MX 10 mx."+d+".", "mx."+d+". A "+ip)
		w.sinks[d] = relaytest.NewSink(t, fmt.Sprintf("%s:%d", ip, w.port), nil)
	}
	w.opts = runner.Options{
		Queue: w.q, Hostname: "mx.here.test", LocalDomains: []string{"here.test"}, MailOwner: currentUser(t),
		Relay: relay.New(relay.Options{Hostname: "mx.here.test", Resolver: &relay.Resolver{Servers: []string{w.dns.Addr}, Timeout: time.Second},
			Port: w.port, DialTimeout: time.Second, CommandTimeout: 2 * time.Second}),
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	}
	return w
}

func currentUser(t *testing.T) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// enqueue queues a message as sendmail would.
func (w *world) enqueue(from string, rcpts ...string) string {
	w.t.Helper()
	env := &queue.Envelope{From: from, Proto: "local"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, &queue.Recipient{Addr: r})
	}
	qw, err := w.q.Create(env)
	if err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(qw, "From: %s\nTo: %s\nSubject: test\nMessage-ID: <%s@here.test>\n\nhello\n", from, rcpts[0], qw.ID())
	if err := qw.Commit(); err != nil {
		w.t.Fatal(err)
	}
	return qw.ID()
}

func (w *world) once(force bool) {
	w.t.Helper()
	o := w.opts
	o.Force = force
	if err := runner.Once(context.Background(), o); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) envelopes() []*queue.Envelope {
	envs, problems, err := w.q.List()
	if err != nil || len(problems) > 0 {
		w.t.Fatal(err, problems)
	}
	return envs
}

// bounces returns the DSNs in the queue (null sender), with their bodies.
func (w *world) bounces() map[string]string {
	out := map[string]string{}
	for _, env := range w.envelopes() {
		if env.From != "" {
			continue
		}
		m, err := w.q.Lock(env.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, env.Size)
		n, _ := m.Body().Read(buf)
		b.Write(buf[:n])
		m.Close()
		out[env.Recipients[0].Addr] = b.String()
	}
	return out
}

// A 550 bounces at once with a DSN that Python's email package reads as
// multipart/report with the failed recipient and the status; the message
// leaves the queue.
func TestBounceOn550(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].Rcpt = func(to string) error {
		return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "<"+to+">: Recipient address rejected")
	}
	id := w.enqueue("alice@here.test", "bob@there.test")
	w.once(false)
	envs := w.envelopes()
	if len(envs) != 1 || envs[0].From != "" || envs[0].ID == id || envs[0].Recipients[0].Addr != "alice@here.test" {
		t.Fatalf("want only the bounce to alice in the queue, got %+v", envs)
	}
	dsn := w.bounces()["alice@here.test"]
	py := `
import sys, email
m = email.message_from_string(sys.stdin.read())
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
parts = m.get_payload()
assert "permanent fatal errors" in parts[0].get_payload(), parts[0].get_payload()
assert "550 5.1.1" in parts[0].get_payload()
ds = parts[1]
assert ds.get_content_type() == "message/delivery-status"
blocks = ds.get_payload()
print(blocks[0]["Reporting-MTA"])
print(blocks[1]["Final-Recipient"], "|", blocks[1]["Status"], "|", blocks[1]["Action"], "|", blocks[1]["Diagnostic-Code"], "|", blocks[1]["Remote-MTA"])
assert parts[2].get_content_type() == "message/rfc822"
print(parts[2].get_payload()[0]["Subject"])
`
	cmd := exec.Command("python3", "-c", py)
	cmd.Stdin = strings.NewReader(dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out, dsn)
	}
	want := "dns; mx.here.test\nrfc822; bob@there.test | 5.1.1 | failed | smtp; 550 5.1.1 <bob@there.test>: Recipient address rejected | dns; mx.there.test\ntest\n"
	if string(out) != want {
		t.Errorf("python read:\n%s\nwant:\n%s", out, want)
	}
}

// A 451 defers with backoff; once the sink recovers, the next run delivers;
// no bounce.
func TestDeferThenDeliver(t *testing.T) {
	w := newWorld(t, "there.test")
	sink := w.sinks["there.test"]
	sink.SetRcpt(func(string) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 7, 1}, "greylisted") })
	w.enqueue("alice@here.test", "bob@there.test")
	w.once(false)
	envs := w.envelopes()
	if len(envs) != 1 || envs[0].Recipients[0].State != queue.Deferred || !strings.Contains(envs[0].Recipients[0].LastReply, "451 4.7.1 greylisted") {
		t.Fatalf("after 451: %+v", envs[0].Recipients[0])
	}
	if next := envs[0].Recipients[0].NextAttempt; time.Until(next) < 100*time.Millisecond {
		t.Errorf("next attempt %v is not after the backoff", next)
	}
	w.once(false) // not due yet: nothing happens
	if n := len(w.envelopes()[0].Recipients); n != 1 || w.envelopes()[0].Recipients[0].Attempts != 1 {
		t.Fatalf("attempted before due")
	}
	sink.SetRcpt(nil)
	time.Sleep(250 * time.Millisecond)
	w.once(false)
	if envs := w.envelopes(); len(envs) != 0 {
		t.Fatalf("queue not empty after recovery: %+v", envs)
	}
	if len(sink.Messages()) != 1 {
		t.Fatalf("sink has %d messages", len(sink.Messages()))
	}
}

// Mail still deferred after max_queue_lifetime bounces, once.
func TestExpiryBounce(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].Rcpt = func(string) error { return relaytest.Reply(421, smtp.EnhancedCode{4, 4, 5}, "too busy") }
	w.opts.MaxQueueLifetime = 300 * time.Millisecond
	w.enqueue("alice@here.test", "bob@there.test")
	w.once(false)
	if len(w.bounces()) != 0 {
		t.Fatal("bounced before expiry")
	}
	time.Sleep(400 * time.Millisecond)
	w.once(true)
	b := w.bounces()["alice@here.test"]
	if !strings.Contains(b, "Action: failed") || !strings.Contains(b, "expired") || !strings.Contains(b, "421 4.4.5 too busy") {
		t.Fatalf("expiry bounce:\n%s", b)
	}
	if len(w.envelopes()) != 1 {
		t.Fatal("the expired message is still queued")
	}
}

// A bounce is never bounced: a null-sender message that fails leaves the
// queue without a new message.
func TestNoBounceForBounce(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].Rcpt = func(string) error { return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no") }
	w.enqueue("", "bob@there.test")
	w.once(false)
	if envs := w.envelopes(); len(envs) != 0 {
		t.Fatalf("queue: %+v", envs)
	}
}

// One message to 100 recipients over 5 domains: one transaction per
// domain, every copy delivered, the message removed.
func TestHundredRecipientsFiveDomains(t *testing.T) {
	domains := []string{"d1.test", "d2.test", "d3.test", "d4.test", "d5.test"}
	w := newWorld(t, domains...)
	var rcpts []string
	for i := 0; i < 100; i++ {
		rcpts = append(rcpts, fmt.Sprintf("user%02d@%s", i, domains[i%5]))
	}
	w.enqueue("alice@here.test", rcpts...)
	w.once(false)
	if envs := w.envelopes(); len(envs) != 0 {
		t.Fatalf("queue not empty: %d", len(envs))
	}
	for _, d := range domains {
		msgs := w.sinks[d].Messages()
		if len(msgs) != 1 || len(msgs[0].To) != 20 {
			t.Errorf("%s: %d transactions", d, len(msgs))
		}
	}
}

// The bounce cap: a broken sender gets at most BounceLimit DSNs an hour.
func TestBounceStormCapped(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].Rcpt = func(string) error { return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no") }
	w.opts.BounceLimit = 3
	for i := 0; i < 6; i++ {
		w.enqueue("list@here.test", "bob@there.test")
	}
	r := runner.New(w.opts)
	if _, err := r.Scan(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if n := len(w.envelopes()); n != 3 {
		t.Fatalf("%d bounces queued, want 3", n)
	}
}

// A corrupt queue file is moved to corrupt/ and the run goes on.
func TestCorruptFileMovedAside(t *testing.T) {
	w := newWorld(t, "there.test")
	good := w.enqueue("alice@here.test", "bob@there.test")
	bad := w.enqueue("alice@here.test", "carol@there.test")
	name := filepath.Join(w.q.Dir(), "msg", bad)
	b, _ := os.ReadFile(name)
	os.WriteFile(name, b[:20], 0o640) // truncated inside the envelope line
	w.once(false)
	if _, err := os.Stat(filepath.Join(w.q.Dir(), "corrupt", bad)); err != nil {
		t.Fatalf("not moved aside: %v", err)
	}
	ids, _ := w.q.IDs()
	if len(ids) != 0 || len(w.sinks["there.test"].Messages()) != 1 {
		t.Fatalf("queue %v (good %s) sink %d", ids, good, len(w.sinks["there.test"].Messages()))
	}
}

// Held messages wait; released ones go; a requeue makes deferred mail due.
func TestHoldReleaseRequeue(t *testing.T) {
	w := newWorld(t, "there.test")
	sink := w.sinks["there.test"]
	id := w.enqueue("alice@here.test", "bob@there.test")
	if err := w.q.Hold(id); err != nil {
		t.Fatal(err)
	}
	w.once(true)
	if len(sink.Messages()) != 0 {
		t.Fatal("a held message was delivered")
	}
	w.q.Release(id)
	var calls atomic.Int32
	sink.SetRcpt(func(string) error {
		if calls.Add(1) == 1 {
			return relaytest.Reply(450, smtp.EnhancedCode{4, 2, 0}, "later")
		}
		return nil
	})
	w.opts.MinBackoff, w.opts.MaxBackoff = time.Hour, time.Hour
	w.once(false)
	if err := w.q.Requeue(id); err != nil {
		t.Fatal(err)
	}
	w.once(false)
	if len(sink.Messages()) != 1 || len(w.envelopes()) != 0 {
		t.Fatalf("after requeue: sink %d, queue %d", len(sink.Messages()), len(w.envelopes()))
	}
}

// The daemon delivers every message of a burst at once although the
// kernel drops most of the burst's wake-ups (a datagram socket's queue
// holds 10): the catch-up after a wake-up finds the messages whose
// wake-up was lost, long before the hourly scan would.
func TestDaemonBurstOfWakeUps(t *testing.T) {
	w := newWorld(t, "there.test")
	o := w.opts
	o.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(w.q.Dir(), "wake")); return err == nil })

	const n = 300
	ids := make([]string, n)
	for i := range ids {
		ids[i] = w.enqueue("a@here.test", fmt.Sprintf("u%d@there.test", i))
	}
	for _, id := range ids {
		w.q.Wake(id)
	}
	waitFor(t, func() bool { return len(w.sinks["there.test"].Messages()) >= n })
	if got := len(w.sinks["there.test"].Messages()); got != n {
		t.Errorf("sink has %d messages, want %d", got, n)
	}
	waitFor(t, func() bool { ids, _ := w.q.IDs(); return len(ids) == 0 })
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// A message deferred past DelayWarning warns its sender once, however many
// attempts and runners follow, about the recipients whose NOTIFY asks for
// it; the warning is an RFC 3464 report that Python's email package reads:
// Action: delayed, the 4.x.x status, Will-Retry-Until, the header only.
func TestDelayWarningOnce(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].SetRcpt(func(string) error { return relaytest.Reply(451, smtp.EnhancedCode{4, 7, 1}, "greylisted") })
	w.opts.DelayWarning = time.Millisecond
	env := &queue.Envelope{From: "alice@here.test", Proto: "local", Recipients: []*queue.Recipient{
		{Addr: "bob@there.test"}, {Addr: "carol@there.test", Notify: "FAILURE"},
		{Addr: "dave@there.test", Notify: "SUCCESS,DELAY"}, {Addr: "erin@there.test", Notify: "NEVER"}}}
	qw, err := w.q.Create(env)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(qw, "From: alice@here.test\nSubject: slow\n\nthe body\n")
	if err := qw.Commit(); err != nil {
		t.Fatal(err)
	}
	w.enqueue("", "frank@there.test") // a bounce is never warned about either
	time.Sleep(5 * time.Millisecond)
	w.once(false)
	// Later runs leave the warning queued, and attempt the message again.
	w.opts.Select = func(env *queue.Envelope) bool { return env.From != "" }
	w.once(true)
	w.once(true)
	warnings := 0
	var dsn string
	for _, e := range w.envelopes() {
		if e.ID == qw.ID() {
			if rc := e.Recipients[0]; rc.State != queue.Deferred || rc.Attempts != 3 || rc.Warned.IsZero() {
				t.Errorf("bob: %v after %d attempts, warned %v", rc.State, rc.Attempts, rc.Warned)
			}
		}
		if e.From == "" && e.Recipients[0].Addr == "alice@here.test" {
			warnings++
			dsn = w.bounces()["alice@here.test"]
		}
	}
	if warnings != 1 {
		t.Fatalf("%d delay warnings queued, want 1", warnings)
	}
	py := `
import sys, email
m = email.message_from_string(sys.stdin.read())
assert m.get_content_type() == "multipart/report", m.get_content_type()
assert m.get_param("report-type") == "delivery-status"
parts = m.get_payload()
assert "WARNING MESSAGE ONLY" in parts[0].get_payload(), parts[0].get_payload()
blocks = parts[1].get_payload()
for b in blocks[1:]:
    assert b["Will-Retry-Until"], b
    print(b["Final-Recipient"], "|", b["Action"], "|", b["Status"], "|", b["Diagnostic-Code"])
print(parts[2].get_content_type(), "the body" in str(parts[2]))
`
	cmd := exec.Command("python3", "-c", py)
	cmd.Stdin = strings.NewReader(dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out, dsn)
	}
	want := "rfc822; bob@there.test | delayed | 4.7.1 | smtp; 451 4.7.1 greylisted\n" +
		"rfc822; dave@there.test | delayed | 4.7.1 | smtp; 451 4.7.1 greylisted\n" +
		"text/rfc822-headers False\n"
	if string(out) != want {
		t.Errorf("python read:\n%s\nwant:\n%s", out, want)
	}
}

// The bounce cap holds across runner processes: a second run (Once again,
// as the next sendmail -q) counts the bounces of the first.
func TestBounceCapSharedAcrossRuns(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].Rcpt = func(string) error { return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no") }
	w.opts.BounceLimit = 3
	w.opts.Select = func(env *queue.Envelope) bool { return env.From != "" } // leave the bounces queued
	bounces := func() int {
		n := 0
		for _, e := range w.envelopes() {
			if e.From == "" {
				n++
			}
		}
		return n
	}
	w.enqueue("list@here.test", "bob@there.test")
	w.enqueue("list@here.test", "bob@there.test")
	w.once(false)
	if n := bounces(); n != 2 {
		t.Fatalf("first run: %d bounces, want 2", n)
	}
	w.enqueue("list@here.test", "bob@there.test")
	w.enqueue("list@here.test", "bob@there.test")
	w.once(false)
	if n := bounces(); n != 3 {
		t.Fatalf("after the second run: %d bounces, want 3", n)
	}
}

// A relay_host whose name does not resolve now defers the mail (never a
// bounce, however often); after the configuration names a smarthost that
// resolves, a requeue delivers the waiting mail there: nothing about the
// old route was kept.
func TestUnresolvableSmarthostDefersUntilRequeue(t *testing.T) {
	w := newWorld(t, "there.test")
	relayOpts := func(host string) relay.Options {
		return relay.Options{Hostname: "mx.here.test", Resolver: &relay.Resolver{Servers: []string{w.dns.Addr}, Timeout: time.Second},
			Port: w.port, DialTimeout: time.Second, CommandTimeout: 2 * time.Second, RelayHost: fmt.Sprintf("[%s]:%d", host, w.port)}
	}
	w.opts.Relay = relay.New(relayOpts("gone.test"))
	w.opts.MinBackoff, w.opts.MaxBackoff = time.Hour, time.Hour
	id := w.enqueue("alice@here.test", "bob@far.test")
	w.once(false)
	w.once(true)
	envs := w.envelopes()
	if len(envs) != 1 || envs[0].ID != id {
		t.Fatalf("want only the message queued (no bounce), got %d messages", len(envs))
	}
	if rc := envs[0].Recipients[0]; rc.State != queue.Deferred || rc.Attempts != 2 {
		t.Fatalf("bob: %v after %d attempts, want deferred after 2 (%s)", rc.State, rc.Attempts, rc.LastReply)
	}

	w.dns.Add(t, "smarthost.test. A 127.0.0.2") // there.test's sink
	w.opts.Relay = relay.New(relayOpts("smarthost.test"))
	w.once(false) // not due for an hour
	if n := len(w.sinks["there.test"].Messages()); n != 0 {
		t.Fatalf("delivered before the requeue: %d", n)
	}
	if err := w.q.Requeue(id); err != nil {
		t.Fatal(err)
	}
	w.once(false)
	msgs := w.sinks["there.test"].Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "bob@far.test" || len(w.envelopes()) != 0 {
		t.Fatalf("after the requeue: sink %+v, queue %d", msgs, len(w.envelopes()))
	}
}

// A delay warning counts against the bounce cap like a bounce: over the
// cap it is not sent, and it is not sent later either (the recipient is
// recorded as warned), so a storm does not turn into a storm of warnings.
func TestDelayWarningCapped(t *testing.T) {
	w := newWorld(t, "there.test")
	w.sinks["there.test"].SetRcpt(func(to string) error {
		if strings.HasPrefix(to, "gone") {
			return relaytest.Reply(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}
		return relaytest.Reply(451, smtp.EnhancedCode{4, 3, 0}, "later")
	})
	w.opts.BounceLimit = 1
	w.opts.DelayWarning = time.Millisecond
	// One at a time, in queue order, so that the bounce takes the place;
	// the DSNs are left queued.
	w.opts.Concurrency = 1
	w.opts.Select = func(env *queue.Envelope) bool { return env.From != "" }
	w.enqueue("list@here.test", "gone@there.test")
	slow := w.enqueue("list@here.test", "bob@there.test")
	time.Sleep(5 * time.Millisecond)
	w.once(false)
	w.opts.BounceLimit = 2 // room again: still no warning for bob
	w.once(true)
	var dsns []string
	for _, e := range w.envelopes() {
		if e.From == "" {
			dsns = append(dsns, w.bounces()[e.Recipients[0].Addr])
		}
		if e.ID == slow && e.Recipients[0].Warned.IsZero() {
			t.Error("the suppressed warning is not recorded: it would go later")
		}
	}
	if len(dsns) != 1 || !strings.Contains(dsns[0], "Action: failed") {
		t.Fatalf("want the bounce alone, got %d notifications:\n%s", len(dsns), strings.Join(dsns, "\n----\n"))
	}
}
