// Package runner moves mail out of the queue: it takes each message that is
// due, expands its recipients (aliases, .forward, users), delivers local
// copies through internal/mailbox, internal/pipe and internal/mbox,
// relays the rest through internal/relay, records every recipient's outcome
// in the queue's state log before going on, retries with backoff, and
// bounces (internal/dsn).
//
// # One message
//
// The runner locks the message (queue.Lock; a message locked by another
// runner is skipped), and for every recipient not yet done whose time has
// come (pending, or deferred with its next attempt due, or all of them in a
// forced run such as sendmail -q):
//
//   - expands it with the aliases (a recipient in another domain expands to
//     itself), each copy with its own envelope sender (owner-NAME);
//   - delivers the copies: to users' mailboxes in-process (internal/mailbox,
//     as deliver does: each on an OS thread with the user's file-system
//     identity; a user reached twice gets one copy); to |commands and
//     /files in-process; to
//     remote addresses in one SMTP transaction per destination (domain, or
//     the smarthost), at most Options.DestinationConcurrency at once for one
//     destination;
//   - notes the recipient's outcome (queue.Message.Note) as soon as all its
//     copies are done: delivered; deferred with the next attempt after the
//     backoff; failed only once the bounce that reports it is committed to
//     the queue (so a crash between the two repeats the attempt, never
//     loses the bounce). The notes are written to the state log in one
//     fsync before each SMTP transaction and at the end of the attempt,
//     and not at all when the message is then removed: a crash repeats at
//     most the deliveries since the last write, which is what makes a
//     local delivery cost no state-log fsync.
//
// A recipient is delivered when every copy is delivered or failed
// permanently (those are bounced one by one), deferred when any copy failed
// temporarily: then all its copies are made again at the next attempt.
// When every recipient is done the message is removed.
//
// # Retries and expiry (Postfix's rules)
//
// A deferred recipient waits the message's age, at least MinBackoff and at
// most MaxBackoff (defaults 5 min and 1 h: the wait doubles while the
// message is young). A temporary failure of a message older than
// MaxQueueLifetime (default 5 days) is final: it bounces with its last
// reply. Nothing about routing is kept: each attempt looks up aliases and MX
// records afresh, so a configuration change applies to waiting mail.
//
// # Delay warnings
//
// When an attempt leaves recipients deferred and the message is older than
// DelayWarning (default 4 h, sendmail's Timeout.queuewarn), the sender gets
// one warning (RFC 3464 Action: delayed, Will-Retry-Until the arrival plus
// MaxQueueLifetime, the message's header only) naming those of them whose
// NOTIFY asks for delays (the default, or DELAY) and who had none before.
// queue.Message.MarkWarned records it in the state log once the warning is
// committed, so no later attempt, runner or restart repeats it (a crash
// between the two may; a warning is never lost).
//
// # Bounces
//
// One DSN per message and attempt names every recipient that failed, from
// MAILER-DAEMON, queued with the null sender <> so that it is never bounced
// itself. None is sent for a null-sender message, or for recipients with
// NOTIFY=NEVER or a NOTIFY without FAILURE; NOTIFY=SUCCESS gets a success
// report. At most BounceLimit DSNs (bounces, warnings and success reports
// alike) go to one sender per hour (a bounce storm from a broken list stops
// there); the others are logged and dropped. The counts live in the queue
// (queue.DSNLog), so the daemon, every sendmail -q run and a restarted
// runner share them.
//
// # Corrupt files
//
// A message file that cannot be parsed is moved to the queue's corrupt/
// directory and logged; the run goes on with the others.
//
// # Privileges
//
// Local delivery to system users needs root: each mailbox copy is written
// with the recipient's file-system identity, pipes and files run as the
// user (or mail_owner) they belong to. With virtual users owned by
// mail_owner the runner can run as mail_owner instead.
package runner

import (
	"context"
	"errors"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"yubin/internal/aliases"
	"yubin/internal/auth"
	"yubin/internal/mailbox"
	"yubin/internal/maillog"
	"yubin/internal/queue"
	"yubin/internal/relay"
)

// Defaults, Postfix's.
const (
	DefaultMinBackoff       = 5 * time.Minute
	DefaultMaxBackoff       = time.Hour
	DefaultMaxQueueLifetime = 5 * 24 * time.Hour
	DefaultConcurrency      = 10
	DefaultDestConcurrency  = 20
	DefaultBounceLimit      = 100
	DefaultDelayWarning     = 4 * time.Hour // sendmail's Timeout.queuewarn
	DefaultInterval         = 5 * time.Minute
)

// Options is what a runner needs; cmd/ builds it from yubin.conf.
type Options struct {
	Queue        *queue.Queue
	Hostname     string
	LocalDomains []string
	Aliases      string // the aliases file; "" none
	UsersFile    string // "" system users
	MailOwner    string
	MailDir      string // mail_dir: where a user's Maildir is
	Relay        *relay.Relay

	Concurrency            int // messages at once; 0 DefaultConcurrency
	DestinationConcurrency int // transactions at once per destination; 0 DefaultDestConcurrency
	MinBackoff, MaxBackoff time.Duration
	MaxQueueLifetime       time.Duration
	DelayWarning           time.Duration // age of a deferred message that warns its sender; 0 DefaultDelayWarning, <0 never
	BounceLimit            int           // DSNs per sender per hour; 0 DefaultBounceLimit, <0 no limit
	Interval               time.Duration // Run: time between queue scans; 0 DefaultInterval

	// Force makes Once attempt every recipient not yet done, due or not
	// (sendmail -q).
	Force bool
	// Select, when not nil, limits a run to the messages it accepts
	// (sendmail -qI/-qR/-qS).
	Select func(*queue.Envelope) bool
	// Wait makes Run wait while another runner daemon serves the queue
	// (smtpd's runner, whose predecessor may still be finishing its
	// deliveries), rather than fail with queue.ErrListening.
	Wait bool
}

// Runner keeps what outlives one queue run: per-destination slots and the
// bounce counts (shared with other runners through the queue).
type Runner struct {
	o Options

	mu      sync.Mutex
	slots   map[string]chan struct{}
	bounces *queue.DSNLog
	seen    map[string]bool // messages being attempted or waiting to be due
}

// New returns a Runner with o's defaults filled in.
func New(o Options) *Runner {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.DestinationConcurrency <= 0 {
		o.DestinationConcurrency = DefaultDestConcurrency
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxQueueLifetime <= 0 {
		o.MaxQueueLifetime = DefaultMaxQueueLifetime
	}
	if o.BounceLimit == 0 {
		o.BounceLimit = DefaultBounceLimit
	}
	if o.DelayWarning == 0 {
		o.DelayWarning = DefaultDelayWarning
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Relay == nil {
		o.Relay = relay.New(relay.Options{Hostname: o.Hostname})
	}
	return &Runner{o: o, slots: map[string]chan struct{}{}, bounces: o.Queue.DSNLog(time.Hour), seen: map[string]bool{}}
}

// Close releases what the Runner holds open.
func (r *Runner) Close() error { return r.bounces.Close() }

// Once runs the queue once: every message that is due (all, with
// o.Force), N at a time, and returns when they are done.
func Once(ctx context.Context, o Options) error {
	r := New(o)
	defer r.Close()
	_, err := r.Scan(ctx, o.Force)
	return err
}

// Run is the queue daemon: a scan at start, then every Interval, at the
// time the earliest deferred recipient is due, and at each wake-up
// (queue.Wake: a message named is attempted at once; an empty wake-up is a
// flush, a forced scan, as smtpd -flush and an ordinary user's sendmail -q
// ask). It returns when ctx ends, after the attempts in
// flight have stopped.
//
// Wake-ups are datagrams, and the kernel drops those that find the
// socket's queue full (net.unix.max_dgram_qlen, 10 by default) while many
// sessions queue mail at once. So a second after a wake-up the runner
// lists the queue and attempts the messages it has not seen yet: a lost
// wake-up costs that second, not an Interval.
func Run(ctx context.Context, o Options) error {
	r := New(o)
	defer r.Close()
	wl, err := o.Queue.ListenWake()
	for waited := false; errors.Is(err, queue.ErrListening) && o.Wait; waited = true {
		if !waited {
			maillog.RunnerError("", err.Error()+": waiting for it to stop")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		wl, err = o.Queue.ListenWake()
	}
	if err != nil {
		return err
	}
	wakes := make(chan string, 64)
	flushes := make(chan struct{}, 1)
	go func() {
		for {
			id, err := wl.Next()
			if err != nil {
				close(wakes)
				return
			}
			if id == "" {
				select {
				case flushes <- struct{}{}:
				default: // one is waiting already
				}
				continue
			}
			select {
			case wakes <- id:
			default: // a backlog: the catch-up finds them
			}
		}
	}()
	defer wl.Close()
	o.Queue.Clean(time.Hour)

	sem := make(chan struct{}, r.o.Concurrency)
	dues := make(chan time.Time, r.o.Concurrency) // from attempts started by wake-ups
	var wg sync.WaitGroup
	defer wg.Wait()
	attempt := func(id string) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if due := r.Message(ctx, id, false); !due.IsZero() {
				select {
				case dues <- due:
				default: // the next scan finds it
				}
			}
		}()
	}
	next := time.Now()
	var catchUp time.Time // when to look for messages whose wake-up was lost
	force := false
	for {
		if !time.Now().Before(next) || force {
			due, err := r.Scan(ctx, force)
			if err != nil {
				maillog.RunnerError("", err.Error())
			}
			force = false
			next = time.Now().Add(r.o.Interval)
			if !due.IsZero() && due.Before(next) {
				next = due
			}
		}
		if !catchUp.IsZero() && !time.Now().Before(catchUp) {
			catchUp = time.Time{}
			ids, err := r.unseen()
			if err != nil {
				maillog.RunnerError("", err.Error())
			}
			for _, id := range ids {
				attempt(id)
			}
		}
		wait := next
		if !catchUp.IsZero() && catchUp.Before(wait) {
			wait = catchUp
		}
		timer := time.NewTimer(time.Until(wait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case id, ok := <-wakes:
			timer.Stop()
			if !ok {
				return errors.New("runner: wake socket closed")
			}
			if catchUp.IsZero() {
				catchUp = time.Now().Add(time.Second)
			}
			attempt(id)
		case <-flushes:
			timer.Stop()
			force = true
		case due := <-dues:
			timer.Stop()
			if due.Before(next) {
				next = due
			}
		}
	}
}

// Scan attempts every message in the queue that is due (all with force)
// and returns the earliest time a deferred recipient will be due (zero when
// none waits).
func (r *Runner) Scan(ctx context.Context, force bool) (time.Time, error) {
	ids, err := r.o.Queue.IDs()
	if err != nil {
		return time.Time{}, err
	}
	var (
		mu   sync.Mutex
		next time.Time
		wg   sync.WaitGroup
	)
	work := make(chan string)
	for w := 0; w < r.o.Concurrency && w < len(ids); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				due := r.Message(ctx, id, force)
				mu.Lock()
				if !due.IsZero() && (next.IsZero() || due.Before(next)) {
					next = due
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		if r.o.Queue.Held(id) {
			continue
		}
		work <- id
	}
	close(work)
	wg.Wait()
	return next, nil
}

// see records that message id is being attempted (true) or is done or
// not the runner's to attempt (false).
func (r *Runner) see(id string, seen bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seen {
		r.seen[id] = true
	} else {
		delete(r.seen, id)
	}
}

// unseen lists the messages in the queue that no attempt has taken up and
// that are not held.
func (r *Runner) unseen() ([]string, error) {
	ids, err := r.o.Queue.IDs()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, id := range ids {
		if !r.seen[id] && !r.o.Queue.Held(id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// env is what one attempt needs that does not change during it.
type env struct {
	db      *aliases.DB
	users   *auth.Directory
	owner   *auth.User
	mailbox *mailbox.Deliverer
}

func (r *Runner) open() (*env, error) {
	db, warning, err := aliases.Open(r.o.Aliases)
	if err != nil {
		return nil, err
	}
	if warning != nil {
		maillog.RunnerError("", "aliases: "+warning.Error())
	}
	users, err := auth.Open(r.o.UsersFile, r.o.MailOwner)
	if err != nil {
		db.Close()
		return nil, err
	}
	e := &env{db: db, users: users,
		mailbox: mailbox.New(mailbox.Options{MailDir: r.o.MailDir, Hostname: r.o.Hostname, Users: users})}
	if u, err := user.Lookup(r.o.MailOwner); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		e.owner = &auth.User{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir}
	} else {
		e.owner = &auth.User{Name: r.o.MailOwner, UID: os.Getuid(), GID: os.Getgid()}
	}
	return e, nil
}

// slot takes a place in dest's concurrency limit; the func gives it back.
func (r *Runner) slot(ctx context.Context, dest string) (func(), error) {
	r.mu.Lock()
	ch := r.slots[dest]
	if ch == nil {
		ch = make(chan struct{}, r.o.DestinationConcurrency)
		r.slots[dest] = ch
	}
	r.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// backoff is how long a recipient of a message that arrived at arrival
// waits after a temporary failure now.
func (r *Runner) backoff(arrival, now time.Time) time.Duration {
	d := now.Sub(arrival)
	return min(max(d, r.o.MinBackoff), r.o.MaxBackoff)
}

// allowBounce counts a DSN to sender against the hourly limit, in the
// queue's DSN log that every runner shares.
func (r *Runner) allowBounce(id, sender string, now time.Time) bool {
	if r.o.BounceLimit < 0 {
		return true
	}
	ok, err := r.bounces.Allow(sender, r.o.BounceLimit, now)
	if err != nil {
		maillog.RunnerError(id, err.Error())
	}
	return ok
}
