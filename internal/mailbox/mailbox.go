// Package mailbox delivers a message into local users' mailboxes: the work of
// deliver(8), the local MDA, and later of the queue runner.
//
// # From address to Maildir
//
// A recipient is "user" or "user@domain". The user part is folded to lower
// case and looked up (as Postfix's local(8) does); with virtual users
// (users_file) "user@domain" is looked up first, then "user". The domain,
// lower-cased, is the domain of the delivery; a bare user gets the host name
// (yubin.conf's hostname). The Maildir is mail_dir with %u replaced by the
// user part, %d by the domain and a leading ~ by the user's home; a virtual
// user without a home cannot have a mail_dir that needs one (ErrConfig).
//
// # What is stored
//
// The message, byte for byte, after these header lines, as Postfix's local(8)
// writes them and with the message's own line ending:
//
//	Return-Path: <sender>
//	X-Original-To: original-recipient      (only when one is given)
//	Delivered-To: user@domain
//
// A message handed over with an mbox "From sender date" line first (as
// Postfix's mailbox_command and procmail hand it over) loses that line and
// the Return-Path:, X-Original-To: and Delivered-To: fields right below it:
// they are the calling MTA's trace of this same delivery, which is written
// again here; their sender and original recipient are kept unless the
// caller names others.
//
// A message that already has a Delivered-To: field for user@domain (compared
// without regard to case) is refused as a mail loop (ErrLoop), as Postfix's
// local(8) and qmail-local refuse it (RFC 3463 5.4.6): delivering it would
// send it round again through whatever forwarded it here.
//
// # Malformed messages
//
// ReadMessage refuses (ErrMalformed) only what no mail reader could take
// for a message: no bytes at all, or a header whose lines are not all fields
// ("Name: value", RFC 5322 §2.2) or their continuations up to the first
// empty line, or a header with a NUL byte. A message without a body, or
// with an empty header, is fine.
//
// # Privileges
//
// Run as root, a delivery takes the user's file-system identity (fsuid,
// fsgid, no supplementary groups) before it touches anything in the user's
// mailbox, on an OS thread of its own (internal/identity): every file
// operation, permission check and new file is the user's, the rest of the
// process stays root, and deliveries to several users may run at once (the
// queue runner delivers in-process). Run as anyone else, a
// delivery is made with the caller's own rights, only into mailboxes whose
// owner uid is the caller's (ErrNotPermitted otherwise): nobody gains a right
// through deliver.
//
// # Outcomes
//
// Status maps every error to the sysexits code that MTAs expect of an MDA:
// 0 delivered; EX_NOUSER (67) no such user or a bad address; EX_DATAERR (65)
// a malformed or too large message, or a mail loop; EX_NOPERM (77) someone
// else's mailbox; EX_CANTCREAT (73) the mailbox cannot be created or written
// for lack of permission (Postfix's local(8) bounces these too); EX_CONFIG (78)
// a configuration that cannot work; EX_TEMPFAIL (75) everything else: a full
// disk, a quota, an I/O error, anything unknown. The message stays in the
// caller's queue on 75 and is bounced on the others.
package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"

	"yubin/internal/auth"
	"yubin/internal/maildir"
	"yubin/internal/status"
)

var (
	// ErrNoUser: no such user, or an address that cannot be one.
	ErrNoUser = auth.ErrNoUser
	// ErrOverQuota: the Maildir++ quota has no room for the message.
	ErrOverQuota = maildir.ErrOverQuota
	// ErrLoop: the message already carries our Delivered-To: line.
	ErrLoop = errors.New("mail forwarding loop")
	// ErrMalformed: the input is not a message (package comment).
	ErrMalformed = errors.New("malformed message")
	// ErrTooBig: the message is larger than allowed.
	ErrTooBig = errors.New("message too big")
	// ErrNotPermitted: an unprivileged caller named another user.
	ErrNotPermitted = errors.New("permission denied")
	// ErrConfig: the configuration cannot give this user a mailbox.
	ErrConfig = errors.New("configuration error")
	// errPrivilege: switching uid or gid failed (temporary).
	errPrivilege = errors.New("cannot switch privileges")
)

// Users answers who the users are; *auth.Directory is one.
type Users interface {
	Lookup(name string) (*auth.User, error)
	Virtual() bool // users come from users_file, where names may hold a domain
}

// Options are what delivery needs from yubin.conf.
type Options struct {
	MailDir  string // mail_dir: %u, %d, a leading ~
	Hostname string // the domain of a recipient given without one
	Users    Users
}

// Deliverer delivers messages to local users.
type Deliverer struct {
	opts Options
}

// New returns a Deliverer.
func New(opts Options) *Deliverer { return &Deliverer{opts: opts} }

// Deliver stores m in the Maildir of rcpt ("user" or "user@domain") and
// returns the path of the new file. Errors are classified for Status.
func (d *Deliverer) Deliver(m *Message, rcpt string) (string, error) {
	if err := m.checkEnvelope(); err != nil {
		return "", err
	}
	local, domain, err := d.split(rcpt)
	if err != nil {
		return "", err
	}
	u, err := d.lookup(local, domain)
	if err != nil {
		return "", err
	}
	addr := local + "@" + domain
	if m.loops(addr) {
		return "", fmt.Errorf("%w for %s", ErrLoop, addr)
	}
	dir, err := ExpandMailDir(d.opts.MailDir, local, domain, u.Home)
	if err != nil {
		return "", fmt.Errorf("user %s: %w", u.Name, err)
	}
	prefix := m.prefix(addr)
	size := int64(len(prefix)) + m.Size()
	var name string
	err = d.asUser(u, func() error {
		md := maildir.Dir(dir)
		if err := md.Init(); err != nil {
			return err
		}
		var err error
		name, err = md.Deliver(io.MultiReader(bytes.NewReader(prefix), m.body()), size)
		return err
	})
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "new", name), nil
}

// split parses a recipient into its lower-cased user part and domain.
func (d *Deliverer) split(rcpt string) (local, domain string, err error) {
	local, domain = rcpt, d.opts.Hostname
	if i := strings.LastIndexByte(rcpt, '@'); i >= 0 {
		local, domain = rcpt[:i], rcpt[i+1:]
		if !validDomain(domain) {
			return "", "", fmt.Errorf("%w: bad domain in %q", ErrNoUser, rcpt)
		}
	}
	local, domain = strings.ToLower(local), strings.ToLower(strings.TrimSuffix(domain, "."))
	if !auth.ValidName(local) || strings.ContainsRune(local, '@') {
		return "", "", fmt.Errorf("%w: %q", ErrNoUser, rcpt)
	}
	return local, domain, nil
}

// validDomain accepts a host name (letters, digits, "-" and "."): what may
// become part of a path through %d.
func validDomain(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '.' || s[0] == '-' || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// lookup finds the user: with virtual users user@domain first, then user.
func (d *Deliverer) lookup(local, domain string) (*auth.User, error) {
	if d.opts.Users.Virtual() {
		u, err := d.opts.Users.Lookup(local + "@" + domain)
		if !errors.Is(err, auth.ErrNoUser) {
			return u, err
		}
	}
	return d.opts.Users.Lookup(local)
}

// ExpandMailDir returns the Maildir of a user: mail_dir with %u replaced by
// user, %d by domain and a leading ~ by home.
func ExpandMailDir(mailDir, user, domain, home string) (string, error) {
	for _, v := range []string{user, domain} {
		if v == "" || v == "." || v == ".." || strings.ContainsRune(v, '/') {
			return "", fmt.Errorf("%w: %q cannot be part of a path", ErrConfig, v)
		}
	}
	dir := mailDir
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		if home == "" {
			return "", fmt.Errorf("%w: mail_dir %q needs a home directory, and the user has none", ErrConfig, mailDir)
		}
		dir = home + dir[1:]
	}
	var b strings.Builder
	for i := 0; i < len(dir); i++ {
		if dir[i] != '%' {
			b.WriteByte(dir[i])
			continue
		}
		if i+1 < len(dir) && dir[i+1] == 'u' {
			b.WriteString(user)
		} else if i+1 < len(dir) && dir[i+1] == 'd' {
			b.WriteString(domain)
		} else {
			return "", fmt.Errorf("%w: mail_dir %q: only %%u and %%d may follow %%", ErrConfig, mailDir)
		}
		i++
	}
	if !filepath.IsAbs(b.String()) {
		return "", fmt.Errorf("%w: mail_dir %q gives %q, not an absolute path", ErrConfig, mailDir, b.String())
	}
	return filepath.Clean(b.String()), nil
}

// Status is the sysexits code for the outcome err of a delivery (package
// comment, Outcomes).
func Status(err error) int {
	switch {
	case err == nil:
		return status.OK
	case errors.Is(err, errPrivilege), errors.Is(err, ErrOverQuota):
		return status.TempFail
	case errors.Is(err, ErrNoUser):
		return status.NoUser
	case errors.Is(err, ErrLoop), errors.Is(err, ErrMalformed), errors.Is(err, ErrTooBig):
		return status.DataErr
	case errors.Is(err, ErrNotPermitted):
		return status.NoPerm
	case errors.Is(err, ErrConfig), errors.Is(err, auth.ErrConfig):
		return status.Config
	}
	// What the filesystem says: no right to the place, or no such place
	// as the mailbox needs, will not mend by itself (Postfix's local(8)
	// bounces it too); everything else may (ENOSPC, EDQUOT, EIO, ...).
	for _, e := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.ENOTDIR, syscall.EISDIR,
		syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EFBIG} {
		if errors.Is(err, e) {
			return status.CantCreat
		}
	}
	return status.TempFail
}
