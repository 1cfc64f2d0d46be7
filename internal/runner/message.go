package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"yubin/internal/address"
	"yubin/internal/aliases"
	"yubin/internal/dsn"
	"yubin/internal/maillog"
	"yubin/internal/mbox"
	"yubin/internal/pipe"
	"yubin/internal/queue"
	"yubin/internal/relay"
)

// outcome is how one copy of a message went.
type outcome struct {
	code       string // RFC 3463: 2.x.x delivered, 4.x.x deferred, 5.x.x failed
	reply      string // for the log, mailq and the bounce
	diag       string // the remote or local program's own reply, for Diagnostic-Code
	diagType   string // "smtp", "x-unix"
	relay      string // "local", "mx.y[ip]:25", ""
	remoteMTA  string
	finalRcpt  string // the address this copy went to
	sender     string
	delivered  bool
	temporary  bool
	attemptEnd time.Time
}

func newOutcome(code, reply string) outcome {
	return outcome{code: code, reply: reply, delivered: code[0] == '2', temporary: code[0] == '4'}
}

// copy is one delivery to make for recipient rcpt.
type copy struct {
	rcpt int
	d    aliases.Delivery
	out  *outcome
}

// attempt is one attempt at one message.
type attempt struct {
	r      *Runner
	m      *queue.Message
	env    *queue.Envelope
	e      *env
	now    time.Time
	body   []byte
	left   map[int]int // recipient → copies not yet done
	copies map[int][]*copy
	// failed and succeeded collect what the notifications report.
	failed, succeeded []*copy
	pendingFail       map[int]bool // recipients to mark failed after the bounce
	deferred          []int        // recipients deferred by this attempt
	retry             time.Time    // when they are due again
}

// Message attempts message id and returns when its next deferred recipient
// is due (zero when the message is done or not ours to attempt).
func (r *Runner) Message(ctx context.Context, id string, force bool) (next time.Time) {
	r.see(id, true)
	defer func() { r.see(id, !next.IsZero()) }()
	m, err := r.o.Queue.Lock(id)
	switch {
	case errors.Is(err, queue.ErrLocked), errors.Is(err, queue.ErrNotFound):
		return time.Time{}
	case errors.Is(err, queue.ErrCorrupt):
		maillog.Corrupt(id, err.Error())
		if err := r.o.Queue.MoveCorrupt(id); err != nil {
			maillog.RunnerError(id, err.Error())
		}
		return time.Time{}
	case err != nil:
		maillog.RunnerError(id, err.Error())
		return time.Now().Add(r.o.MinBackoff)
	}
	defer func() {
		if err := m.Close(); err != nil {
			maillog.RunnerError(id, err.Error())
		}
	}()
	qenv := m.Envelope()
	if r.o.Select != nil && !r.o.Select(qenv) {
		return time.Time{}
	}
	now := time.Now()
	var due []int
	for i, rc := range qenv.Recipients {
		switch {
		case rc.State.Done():
		case rc.State == queue.Pending || force || !rc.NextAttempt.After(now):
			due = append(due, i)
		case next.IsZero() || rc.NextAttempt.Before(next):
			next = rc.NextAttempt
		}
	}
	if len(due) == 0 {
		if len(qenv.Pending()) == 0 {
			r.remove(m)
		}
		return next
	}
	e, err := r.open()
	if err != nil {
		// The aliases or users cannot be read now: wait, do not bounce.
		maillog.RunnerError(id, err.Error())
		return now.Add(r.o.MinBackoff)
	}
	defer e.db.Close()
	body, err := io.ReadAll(m.Body())
	if err != nil {
		maillog.RunnerError(id, "read message: "+err.Error())
		return now.Add(r.o.MinBackoff)
	}
	maillog.Active(id, qenv.From, qenv.Size, len(due))
	a := &attempt{r: r, m: m, env: qenv, e: e, now: now, body: body,
		left: map[int]int{}, copies: map[int][]*copy{}, pendingFail: map[int]bool{}}
	a.run(ctx, due)

	// Anything still due is deferred; the earliest of those is our answer.
	next = time.Time{}
	for _, rc := range qenv.Recipients {
		if rc.State == queue.Deferred && (next.IsZero() || rc.NextAttempt.Before(next)) {
			next = rc.NextAttempt
		}
	}
	if len(qenv.Pending()) == 0 && len(a.pendingFail) == 0 {
		r.remove(m)
		return time.Time{}
	}
	return next
}

func (r *Runner) remove(m *queue.Message) {
	id := m.Envelope().ID
	if err := m.Remove(); err != nil {
		maillog.RunnerError(id, err.Error())
		return
	}
	maillog.Removed(id)
}

// run expands the due recipients, makes every copy, and records outcomes.
func (a *attempt) run(ctx context.Context, due []int) {
	var all []*copy
	for _, i := range due {
		rc := a.env.Recipients[i]
		ds, err := a.e.db.Expand(rc.Addr, &aliases.Options{
			Sender: a.env.From, Domain: a.r.o.Hostname, LocalDomains: a.r.o.LocalDomains,
			Users: a.e.users, MailOwner: a.e.owner,
			Warn: func(err error) { maillog.RunnerError(a.env.ID, rc.Addr+": "+err.Error()) },
		})
		if err != nil {
			code := "4.3.0"
			if errors.Is(err, aliases.ErrTooMany) {
				code = "5.3.0"
			}
			c := &copy{rcpt: i, d: aliases.Delivery{Kind: aliases.Failed, Value: rc.Addr, Sender: a.env.From}}
			a.left[i] = 1
			a.copies[i] = []*copy{c}
			a.done(c, newOutcome(code, "alias expansion: "+err.Error()))
			continue
		}
		if len(ds) == 0 {
			// An empty list: nothing to deliver, and nothing wrong.
			a.mark(i, queue.Delivered, "no recipients in list", time.Time{})
			continue
		}
		a.left[i] = len(ds)
		for _, d := range ds {
			c := &copy{rcpt: i, d: d}
			a.copies[i] = append(a.copies[i], c)
			all = append(all, c)
		}
	}

	var mailboxes, remote []*copy
	for _, c := range all {
		switch c.d.Kind {
		case aliases.Mailbox:
			mailboxes = append(mailboxes, c)
		case aliases.Address:
			remote = append(remote, c)
		case aliases.Pipe:
			a.pipe(ctx, c)
		case aliases.Append:
			a.append(ctx, c)
		default: // Failed
			code := "5.3.0"
			if errors.Is(c.d.Err, aliases.ErrNoUser) {
				code = "5.1.1"
			}
			o := newOutcome(code, c.d.Err.Error())
			o.finalRcpt = c.d.Value
			if !strings.ContainsAny(o.finalRcpt, "@|/:") {
				o.finalRcpt = qualify(o.finalRcpt, a.r.o.Hostname)
			}
			a.done(c, o)
		}
	}
	a.local(mailboxes)
	a.relay(ctx, remote)
	a.notify()
}

// done records one copy's outcome, logs it, and finishes its recipient
// when it was the last.
func (a *attempt) done(c *copy, o outcome) {
	if o.finalRcpt == "" {
		o.finalRcpt = c.d.Value
	}
	o.sender = c.d.Sender
	c.out = &o
	status := "sent"
	switch {
	case o.temporary && a.expired():
		status = "expired"
	case o.temporary:
		status = "deferred"
	case !o.delivered:
		status = "bounced"
	}
	rc := a.env.Recipients[c.rcpt]
	agent := maillog.Local
	if c.d.Kind == aliases.Address {
		agent = maillog.SMTP
	}
	maillog.Attempt(agent, a.env.ID, o.finalRcpt, rc.Addr, o.relay, time.Since(a.env.Arrival), o.code, status, o.reply)
	a.finish(c)
}

func (a *attempt) expired() bool {
	return a.now.Sub(a.env.Arrival) >= a.r.o.MaxQueueLifetime
}

// finish marks recipient c.rcpt when all its copies are done.
func (a *attempt) finish(c *copy) {
	a.left[c.rcpt]--
	if a.left[c.rcpt] > 0 {
		return
	}
	i := c.rcpt
	var temp, perm []*copy
	var delivered int
	for _, c := range a.copies[i] {
		switch {
		case c.out.delivered:
			delivered++
		case c.out.temporary:
			temp = append(temp, c)
		default:
			perm = append(perm, c)
		}
	}
	rc := a.env.Recipients[i]
	switch {
	case len(temp) > 0 && !a.expired():
		a.mark(i, queue.Deferred, temp[0].out.reply, a.retryAt())
		a.deferred = append(a.deferred, i)
	case len(temp) > 0 || len(perm) > 0:
		// Failed copies (and, once the message has expired, deferred
		// ones) are bounced; the recipient is marked once the bounce is
		// queued.
		a.failed = append(a.failed, perm...)
		a.failed = append(a.failed, temp...)
		a.pendingFail[i] = delivered == 0
	default:
		reply := a.copies[i][0].out.reply
		a.mark(i, queue.Delivered, reply, time.Time{})
		if wants(rc.Notify, "SUCCESS") {
			a.succeeded = append(a.succeeded, a.copies[i]...)
		}
	}
}

// retryAt is when the recipients this attempt defers are due again: one
// time for all, so that they go together (and share a delay warning).
func (a *attempt) retryAt() time.Time {
	if a.retry.IsZero() {
		now := time.Now()
		a.retry = now.Add(a.r.backoff(a.env.Arrival, now))
	}
	return a.retry
}

// mark notes recipient i's outcome; flush writes the notes down.
func (a *attempt) mark(i int, s queue.State, reply string, next time.Time) {
	if err := a.m.Note(i, s, reply, next); err != nil {
		maillog.RunnerError(a.env.ID, err.Error())
	}
}

func (a *attempt) flush() {
	if err := a.m.Flush(); err != nil {
		maillog.RunnerError(a.env.ID, err.Error())
	}
}

// wants reports whether a NOTIFY value asks for kind; "" is the default,
// FAILURE and DELAY (RFC 3461 §4.1).
func wants(notify, kind string) bool {
	if notify == "" {
		return kind != "SUCCESS"
	}
	for _, n := range strings.Split(strings.ToUpper(notify), ",") {
		if strings.TrimSpace(n) == kind {
			return true
		}
	}
	return false
}

// notify queues the bounce for the failed copies (then marks their
// recipients), the delay warning, and a success report when one was asked
// for.
func (a *attempt) notify() {
	if len(a.failed) > 0 {
		var report []*copy
		for _, c := range a.failed {
			if wants(a.env.Recipients[c.rcpt].Notify, "FAILURE") {
				report = append(report, c)
			}
		}
		ok := a.send(dsn.Failure, report, "non-delivery")
		if !ok {
			// The bounce could not be queued: try the whole thing again
			// later rather than lose the report.
			next := time.Now().Add(a.r.o.MinBackoff)
			for i := range a.pendingFail {
				a.mark(i, queue.Deferred, "bounce not queued yet", next)
			}
			a.pendingFail = map[int]bool{}
			return
		}
		for i, none := range a.pendingFail {
			reply := ""
			for _, c := range a.copies[i] {
				if !c.out.delivered {
					reply = c.out.reply
					break
				}
			}
			if none {
				a.mark(i, queue.Failed, reply, time.Time{})
			} else {
				a.mark(i, queue.Delivered, "some copies bounced: "+reply, time.Time{})
			}
		}
		a.pendingFail = map[int]bool{}
	}
	a.warn()
	if len(a.succeeded) > 0 {
		a.send(dsn.Success, a.succeeded, "success")
	}
}

// warn queues one delay warning, once the message is older than
// DelayWarning, for the recipients this attempt deferred that ask for it
// (NOTIFY default or DELAY) and have not had one, then records it in the
// queue: after the warning is committed, so that a crash repeats it rather
// than lose it.
func (a *attempt) warn() {
	if a.r.o.DelayWarning < 0 || time.Since(a.env.Arrival) < a.r.o.DelayWarning {
		return
	}
	var rcpts []int
	var report []*copy
	for _, i := range a.deferred {
		rc := a.env.Recipients[i]
		if !rc.Warned.IsZero() || !wants(rc.Notify, "DELAY") {
			continue
		}
		rcpts = append(rcpts, i)
		for _, c := range a.copies[i] {
			if c.out.temporary {
				report = append(report, c)
			}
		}
	}
	if len(rcpts) == 0 || !a.send(dsn.Delay, report, "delay") {
		return
	}
	if err := a.m.MarkWarned(rcpts); err != nil {
		maillog.RunnerError(a.env.ID, err.Error())
	}
}

// send queues one notification about the copies to the message's sender.
// It reports false only when a notification that should go could not be
// queued; a null sender, no copies to report, or the hourly limit are
// true (nothing to retry).
func (a *attempt) send(kind dsn.Kind, copies []*copy, what string) bool {
	if a.env.From == "" || len(copies) == 0 {
		return true
	}
	if !a.r.allowBounce(a.env.ID, a.env.From, time.Now()) {
		maillog.BounceSuppressed(a.env.ID, a.env.From, fmt.Sprintf("more than %d notifications to the sender in an hour", a.r.o.BounceLimit))
		return true
	}
	rep := &dsn.Report{
		Kind: kind, ReportingMTA: a.r.o.Hostname, QueueID: a.env.ID, Sender: a.env.From,
		Arrival: a.env.Arrival, EnvID: a.env.EnvID, Ret: a.env.Ret,
		Original: bytes.NewReader(a.body), Size: int64(len(a.body)), ID: a.env.ID + "." + strings.ToLower(what[:1]) + fmt.Sprint(time.Now().UnixNano()%1e6),
	}
	if kind == dsn.Delay {
		rep.RetryUntil = a.env.Arrival.Add(a.r.o.MaxQueueLifetime)
	}
	for _, c := range copies {
		rc := a.env.Recipients[c.rcpt]
		orig := rc.ORCPT
		if orig == "" && c.out.finalRcpt != rc.Addr {
			orig = "rfc822;" + rc.Addr
		}
		status := c.out.code
		reason := c.out.reply
		if c.out.temporary && kind == dsn.Failure {
			reason = "message expired after " + a.now.Sub(a.env.Arrival).Round(time.Second).String() + " in the queue; last reply: " + reason
		}
		rep.Recipients = append(rep.Recipients, dsn.Recipient{
			Final: c.out.finalRcpt, Original: orig, Status: status,
			Diagnostic: c.out.diag, DiagType: c.out.diagType, Reason: reason,
			RemoteMTA: c.out.remoteMTA, LastAttempt: time.Now(),
		})
	}
	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		maillog.RunnerError(a.env.ID, "notification: "+err.Error())
		return false
	}
	w, err := a.r.o.Queue.Create(&queue.Envelope{From: "", Recipients: []*queue.Recipient{{Addr: a.env.From}}, Proto: "local", User: "MAILER-DAEMON"})
	if err == nil {
		w.Write(buf.Bytes())
		err = w.Commit()
	}
	if err != nil {
		maillog.RunnerError(a.env.ID, "queue notification: "+err.Error())
		return false
	}
	maillog.BounceQueued(a.env.ID, what, w.ID())
	a.r.o.Queue.Wake(w.ID())
	return true
}

// relay makes the remote copies: one transaction per sender and destination.
func (a *attempt) relay(ctx context.Context, copies []*copy) {
	type key struct{ sender, dest, domain string }
	groups := map[key][]*copy{}
	var order []key
	for _, c := range copies {
		domain := address.Domain(c.d.Value)
		k := key{c.d.Sender, a.r.o.Relay.Destination(domain), strings.ToLower(domain)}
		if a.r.o.Relay.Destination(domain) != strings.ToLower(domain) {
			k.domain = "" // the smarthost takes every domain at once
		}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	for _, k := range order {
		// What is known so far is written down before the next
		// transaction, so that a crash repeats no more than that one.
		a.flush()
		g := groups[k]
		release, err := a.r.slot(ctx, k.dest)
		if err != nil {
			for _, c := range g {
				a.done(c, newOutcome("4.4.2", "delivery interrupted"))
			}
			continue
		}
		msg := &relay.Message{
			From: k.sender, Body: func() io.Reader { return bytes.NewReader(a.body) }, Size: int64(len(a.body)),
			Ret: a.env.Ret, EnvID: a.env.EnvID, SMTPUTF8: a.env.SMTPUTF8,
		}
		for _, c := range g {
			rc := a.env.Recipients[c.rcpt]
			r := relay.Recipient{Addr: c.d.Value, Notify: rc.Notify}
			if strings.EqualFold(c.d.Value, rc.Addr) {
				r.ORCPT = rc.ORCPT
			}
			msg.Recipients = append(msg.Recipients, r)
		}
		domain := k.domain
		if domain == "" {
			domain = address.Domain(g[0].d.Value)
		}
		results := a.r.o.Relay.Deliver(ctx, domain, msg)
		release()
		for j, c := range g {
			res := results[j]
			o := newOutcome(res.Code, res.Reply)
			o.relay, o.remoteMTA, o.diag, o.diagType = res.Relay, res.RemoteMTA, res.Diagnostic, "smtp"
			a.done(c, o)
		}
	}
}

// pipe delivers a copy to a command.
func (a *attempt) pipe(ctx context.Context, c *copy) {
	u := c.d.User
	rc := a.env.Recipients[c.rcpt]
	cmd := pipe.Command{
		Line: c.d.Value, Uid: u.UID, Gid: u.GID, User: u.Name, Home: u.Home,
		Envelope:      mbox.Envelope{Sender: c.d.Sender, Recipient: address.Qualify(rc.Addr, a.r.o.Hostname), OriginalRecipient: orcpt(rc)},
		ClientAddress: a.env.Client, ClientHostname: a.env.ClientName, ClientHelo: a.env.Helo,
		ClientProtocol: a.env.Proto, SASLUsername: a.env.User,
	}
	err := pipe.Run(ctx, cmd, bytes.NewReader(a.body))
	a.done(c, localOutcome(err, "|"+c.d.Value, "delivered via command"))
}

// append delivers a copy to a file.
func (a *attempt) append(ctx context.Context, c *copy) {
	u := c.d.User
	rc := a.env.Recipients[c.rcpt]
	mb := mbox.Mailbox{Path: c.d.Value, Uid: u.UID, Gid: u.GID,
		Envelope: mbox.Envelope{Sender: c.d.Sender, Recipient: address.Qualify(rc.Addr, a.r.o.Hostname), OriginalRecipient: orcpt(rc)}}
	err := mbox.Append(ctx, mb, bytes.NewReader(a.body))
	a.done(c, localOutcome(err, c.d.Value, "delivered to file: "+c.d.Value))
}

// localOutcome classifies an error of pipe or mbox, which carry their own
// status codes.
func localOutcome(err error, final, ok string) outcome {
	if err == nil {
		o := newOutcome("2.0.0", ok)
		o.relay, o.finalRcpt = "local", final
		return o
	}
	code := "4.3.0"
	var coded interface{ DSN() string }
	if errors.As(err, &coded) && len(coded.DSN()) >= 5 {
		code = coded.DSN()
	}
	o := newOutcome(code, err.Error())
	o.relay, o.finalRcpt, o.diag, o.diagType = "local", final, err.Error(), "x-unix"
	return o
}

// orcpt is the original recipient for trace headers: ORCPT's address when
// given, else the envelope recipient.
func orcpt(rc *queue.Recipient) string {
	if typ, val, ok := strings.Cut(rc.ORCPT, ";"); ok && strings.EqualFold(typ, "rfc822") {
		return val
	}
	return rc.Addr
}
