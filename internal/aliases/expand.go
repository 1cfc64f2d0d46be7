package aliases

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"yubin/internal/address"
	"yubin/internal/auth"
)

const (
	// DefaultMaxDepth is sendmail's MaxAliasRecursion.
	DefaultMaxDepth = 10
	// DefaultMaxTargets bounds the targets visited for one recipient.
	DefaultMaxTargets = 10000
)

// Users finds local users; *auth.Directory is one. Lookup returns an error
// wrapping auth.ErrNoUser for a name that is no user.
type Users interface {
	Lookup(name string) (*auth.User, error)
}

// Options is what an expansion needs to know besides the aliases.
type Options struct {
	Sender       string     // the message's envelope sender; "" for a bounce
	Domain       string     // qualifies owner-NAME senders (yubin.conf's hostname)
	LocalDomains []string   // addresses in these domains are local names here
	Users        Users      // the local users
	MailOwner    *auth.User // runs the pipes and files named in the aliases file
	MaxDepth     int        // 0: DefaultMaxDepth
	MaxTargets   int        // 0: DefaultMaxTargets
	// Warn, when not nil, is told what the expansion skipped: a .forward
	// ignored (ErrForwardIgnored) and why, a looping branch dropped (ErrLoop).
	Warn func(error)
}

// Delivery is one copy of the message to make.
type Delivery struct {
	Kind Kind // Mailbox, Address (remote), Pipe, Append or Failed
	// Value is the user's name (Mailbox), the address (Address), the
	// command (Pipe), the path (Append), or the target that failed (Failed).
	Value string
	// Sender is the envelope sender of this copy: owner-NAME@Domain of the
	// nearest list above it with an owner, else Options.Sender.
	Sender string
	// Alias is the nearest alias this copy came through; "" when none.
	Alias string
	// Source is where the target was written ("/etc/aliases:12",
	// "/home/bob/.forward:1"); "" for the recipient itself.
	Source string
	// User is the recipient (Mailbox), or whom a Pipe or Append runs as:
	// the mail owner for the aliases file, the user for their .forward.
	User *auth.User
	// Err says why a Failed delivery fails: it wraps ErrNoUser, ErrUnsafe,
	// ErrTooDeep, ErrLoop, or is an *Error naming a bad line or file.
	// Failures are permanent: the copy bounces.
	Err error
}

// Expand returns the deliveries for one recipient, local@domain or a bare
// local name. A recipient in a domain that is not local is returned as it
// is, to relay. A list whose only members are empty :include: files
// delivers nothing (nil, nil), as in sendmail. The error is ErrTooMany, or a
// temporary failure (a file or the user database could not be read): try
// again later.
func (db *DB) Expand(rcpt string, opts *Options) ([]Delivery, error) {
	x := &expander{db: db, o: *opts, seen: map[string]bool{}, done: map[string]bool{}}
	if x.o.MaxDepth <= 0 {
		x.o.MaxDepth = DefaultMaxDepth
	}
	if x.o.MaxTargets <= 0 {
		x.o.MaxTargets = DefaultMaxTargets
	}
	local, domain, hasDomain := address.Split(rcpt)
	top := &frame{sender: opts.Sender, runAs: opts.MailOwner}
	if hasDomain && !x.isLocal(domain) {
		x.deliver(top, Delivery{Kind: Address, Value: rcpt})
		return x.out, nil
	}
	if err := x.name(top, foldName(local), Target{}); err != nil {
		return nil, err
	}
	if len(x.out) == 0 && x.loop != nil {
		// Only loops: say so rather than deliver nothing.
		x.out = append(x.out, Delivery{Kind: Failed, Value: rcpt, Sender: opts.Sender, Err: x.loop})
	}
	return x.out, nil
}

type expander struct {
	db      *DB
	o       Options
	out     []Delivery
	seen    map[string]bool // deliveries made, by key
	done    map[string]bool // aliases, users and includes expanded
	visited int
	loop    error // the first loop dropped
}

// frame is where in the expansion a target was found.
type frame struct {
	depth  int
	sender string
	alias  string
	chain  []string   // the names and includes above, for loops
	runAs  *auth.User // runs pipes and files found here
	unsafe error      // set: pipes and files found here fail with it
	source string     // the file the targets come from, for messages
}

func (fr *frame) child(key string) *frame {
	c := *fr
	c.depth++
	c.chain = append(append([]string(nil), fr.chain...), key)
	return &c
}

func (fr *frame) inChain(key string) bool {
	for _, k := range fr.chain {
		if k == key {
			return true
		}
	}
	return false
}

func (x *expander) isLocal(domain string) bool { return isLocalDomain(domain, x.o.LocalDomains) }

func (x *expander) warn(err error) {
	if x.o.Warn != nil {
		x.o.Warn(err)
	}
}

// deliver adds d unless an equal copy is already there.
func (x *expander) deliver(fr *frame, d Delivery) {
	if d.Sender == "" {
		d.Sender = fr.sender
	}
	if d.Alias == "" {
		d.Alias = fr.alias
	}
	key := d.Kind.String() + "\x00" + d.Value
	switch d.Kind {
	case Pipe, Append:
		key += "\x00" + strconv.Itoa(d.User.UID)
	case Failed:
		key += "\x00" + d.Err.Error()
	}
	if x.seen[key] {
		return
	}
	x.seen[key] = true
	x.out = append(x.out, d)
}

func (x *expander) fail(fr *frame, t Target, value string, err error) {
	x.deliver(fr, Delivery{Kind: Failed, Value: value, Source: x.sourceOf(fr, t), Err: err})
}

func (x *expander) sourceOf(fr *frame, t Target) string {
	if t.Line == 0 {
		return ""
	}
	if fr.source == "" {
		return x.db.source(t)
	}
	return fr.source + ":" + strconv.Itoa(t.Line)
}

// target expands one target found in frame fr.
func (x *expander) target(fr *frame, t Target) error {
	x.visited++
	if x.visited > x.o.MaxTargets {
		return fmt.Errorf("%w (more than %d)", ErrTooMany, x.o.MaxTargets)
	}
	switch t.Kind {
	case Local:
		return x.name(fr, t.Value, t)
	case Address:
		local, domain, _ := address.Split(t.Value)
		if x.isLocal(domain) {
			return x.name(fr, foldName(local), t)
		}
		x.deliver(fr, Delivery{Kind: Address, Value: t.Value, Source: x.sourceOf(fr, t)})
	case Mailbox:
		u, err := x.o.Users.Lookup(t.Value)
		if errors.Is(err, auth.ErrNoUser) {
			x.fail(fr, t, t.String(), fmt.Errorf("%w: %s", ErrNoUser, t.Value))
			return nil
		}
		if err != nil {
			return err
		}
		x.deliver(fr, Delivery{Kind: Mailbox, Value: u.Name, User: u, Source: x.sourceOf(fr, t)})
	case Pipe, Append:
		switch {
		case fr.unsafe != nil:
			x.fail(fr, t, t.String(), fr.unsafe)
		case fr.runAs == nil:
			x.fail(fr, t, t.String(), fmt.Errorf("%w: no mail owner to run %s as", ErrUnsafe, t))
		default:
			x.deliver(fr, Delivery{Kind: t.Kind, Value: t.Value, User: fr.runAs, Source: x.sourceOf(fr, t)})
		}
	case Include:
		return x.include(fr, t)
	default:
		return fmt.Errorf("aliases: target %q of unknown kind %v", t.Value, t.Kind)
	}
	return nil
}

// name expands a local name: an alias, else a user and their .forward.
func (x *expander) name(fr *frame, name string, t Target) error {
	if fr.inChain(name) {
		// A self-reference: a user gets the copy in their mailbox,
		// anything else is a loop, dropped.
		u, err := x.o.Users.Lookup(name)
		if err == nil {
			x.deliver(fr, Delivery{Kind: Mailbox, Value: u.Name, User: u, Source: x.sourceOf(fr, t)})
			return nil
		}
		if !errors.Is(err, auth.ErrNoUser) {
			return err
		}
		loop := fmt.Errorf("%w: %s -> %s dropped", ErrLoop, strings.Join(fr.chain, " -> "), name)
		if x.loop == nil {
			x.loop = loop
		}
		x.warn(loop)
		return nil
	}
	if fr.depth >= x.o.MaxDepth {
		x.fail(fr, t, name, fmt.Errorf("%w: %s -> %s (at most %d levels)", ErrTooDeep, strings.Join(fr.chain, " -> "), name, x.o.MaxDepth))
		return nil
	}
	targets, ok, err := x.db.Lookup(name)
	if err != nil {
		return err
	}
	if ok {
		if x.done["alias\x00"+name] {
			return nil
		}
		x.done["alias\x00"+name] = true
		c := fr.child(name)
		c.alias, c.runAs, c.unsafe, c.source = name, x.o.MailOwner, nil, ""
		if owner, err := x.owner(name); err != nil {
			return err
		} else if owner != "" && x.o.Sender != "" {
			c.sender = owner
		}
		for _, t := range targets {
			if err := x.target(c, t); err != nil {
				return err
			}
		}
		return nil
	}
	u, err := x.o.Users.Lookup(name)
	if errors.Is(err, auth.ErrNoUser) {
		x.fail(fr, t, name, fmt.Errorf("%w: %s", ErrNoUser, name))
		return nil
	}
	if err != nil {
		return err
	}
	if x.done["user\x00"+u.Name] {
		return nil
	}
	x.done["user\x00"+u.Name] = true
	path, targets, err := x.forward(u)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		x.deliver(fr, Delivery{Kind: Mailbox, Value: u.Name, User: u, Source: x.sourceOf(fr, t)})
		return nil
	}
	c := fr.child(name)
	c.runAs, c.unsafe, c.source = u, nil, path
	for _, t := range targets {
		if err := x.target(c, t); err != nil {
			return err
		}
	}
	return nil
}

// owner returns the envelope sender for the members of alias name:
// owner-NAME@Domain when owner-NAME is an alias (owner-owner for an owner-
// alias itself), else "".
func (x *expander) owner(name string) (string, error) {
	owner := "owner-" + name
	if strings.HasPrefix(name, "owner-") {
		owner = "owner-owner"
	}
	_, ok, err := x.db.Lookup(owner)
	if err != nil || !ok {
		return "", err
	}
	if x.o.Domain == "" {
		return owner, nil
	}
	return owner + "@" + strings.ToLower(x.o.Domain), nil
}

// include expands an :include: file.
func (x *expander) include(fr *frame, t Target) error {
	key := ":include:" + t.Value
	if fr.inChain(key) {
		loop := fmt.Errorf("%w: %s -> %s dropped", ErrLoop, strings.Join(fr.chain, " -> "), key)
		if x.loop == nil {
			x.loop = loop
		}
		x.warn(loop)
		return nil
	}
	if fr.depth >= x.o.MaxDepth {
		x.fail(fr, t, t.String(), fmt.Errorf("%w: %s -> %s (at most %d levels)", ErrTooDeep, strings.Join(fr.chain, " -> "), key, x.o.MaxDepth))
		return nil
	}
	if x.done[key] {
		return nil
	}
	x.done[key] = true
	f, err := os.Open(t.Value)
	if err != nil {
		if isNotExist(err) || errors.Is(err, fs.ErrPermission) {
			x.fail(fr, t, t.String(), &Error{File: t.Value, Err: unwrapPath(err)})
			return nil
		}
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		x.fail(fr, t, t.String(), &Error{File: t.Value, Err: errors.New("not a regular file")})
		return nil
	}
	c := fr.child(key)
	c.source = t.Value
	if c.unsafe == nil {
		c.unsafe = x.includeSafety(t.Value, fi, fr.runAs)
	}
	targets, errs := ParseTargets(t.Value, f)
	for _, err := range errs {
		var le *Error
		if errors.As(err, &le) && le.Line == 0 {
			return err // reading failed: try again later
		}
		x.deliver(c, Delivery{Kind: Failed, Value: t.String(), Err: err})
	}
	for _, t := range targets {
		if err := x.target(c, t); err != nil {
			return err
		}
	}
	return nil
}

// includeSafety says why pipes and files in an :include: file must not run,
// or nil when they may: the file is owned by root or by whom they run as,
// and no one else can write it.
func (x *expander) includeSafety(path string, fi fs.FileInfo, runAs *auth.User) error {
	uid, _ := fileOwner(fi)
	switch {
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%w: :include:%s is group- or world-writable (mode %04o)", ErrUnsafe, path, fi.Mode().Perm())
	case uid != 0 && (runAs == nil || uid != runAs.UID):
		who := "the mail owner"
		if runAs != nil {
			who = runAs.Name
		}
		return fmt.Errorf("%w: :include:%s is owned by uid %d, not root or %s", ErrUnsafe, path, uid, who)
	}
	return nil
}

// forward returns the targets of u's .forward, or none when there is none
// or it is ignored (with a warning).
func (x *expander) forward(u *auth.User) (string, []Target, error) {
	if u.Home == "" {
		return "", nil, nil
	}
	path := filepath.Join(u.Home, ".forward")
	targets, err := ReadForward(path, u)
	if errors.Is(err, ErrForwardIgnored) {
		x.warn(err)
		return path, nil, nil
	}
	return path, targets, err
}

// ReadForward reads the .forward file at path of user u. It returns no
// targets and no error when there is no file; an error wrapping
// ErrForwardIgnored when the file must not be used (not a regular file, not
// owned by u or root, group- or world-writable, unreadable, or with a bad
// line), to be logged; any other error is temporary.
func ReadForward(path string, u *auth.User) ([]Target, error) {
	f, err := os.Open(path)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("%s: %w: %v", path, ErrForwardIgnored, unwrapPath(err))
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	uid, _ := fileOwner(fi)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrForwardIgnored)
	case uid != u.UID && uid != 0:
		return nil, fmt.Errorf("%s: %w: owned by uid %d, not %s (uid %d) or root", path, ErrForwardIgnored, uid, u.Name, u.UID)
	case fi.Mode().Perm()&0o022 != 0:
		return nil, fmt.Errorf("%s: %w: group- or world-writable (mode %04o)", path, ErrForwardIgnored, fi.Mode().Perm())
	}
	targets, errs := ParseTargets(path, f)
	if len(errs) > 0 {
		var le *Error
		if errors.As(errs[0], &le) && le.Line == 0 {
			return nil, errs[0] // reading failed: try again later
		}
		more := ""
		if len(errs) > 1 {
			more = fmt.Sprintf(" (and %d more bad lines)", len(errs)-1)
		}
		return nil, fmt.Errorf("%w: %v%s", ErrForwardIgnored, errs[0], more)
	}
	return targets, nil
}

// unwrapPath drops the *fs.PathError around err when the message names the
// file already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileOwner returns the uid and gid that own a file.
func fileOwner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}
