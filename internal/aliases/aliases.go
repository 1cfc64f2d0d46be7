// Package aliases reads the aliases file (sendmail and Postfix syntax),
// compiles it into a constant database beside it, and expands a local
// recipient into what to do with each copy of a message: mailboxes, remote
// addresses, pipes and files, through aliases, :include: files and users'
// ~/.forward files. See aliases(5) and newaliases(8) for the user's view.
//
// # The file
//
//	# a comment: a line whose first non-blank character is "#"
//	postmaster: root
//	root:       alice, bob@example.org
//	staff:      alice, "|/usr/local/bin/archive staff",
//	            /var/mail/staff.archive,
//	            :include:/etc/mail/lists/staff
//	owner-staff: alice
//	"john doe": \jdoe
//
// An entry is name: target, target, … . A line starting with a space or a tab
// continues the entry above it, and so does the line after one that ends in
// a backslash (the backslash and newline are removed). Blank lines and
// comment lines are skipped and do not end an entry, so a long list can carry
// comments between its members (as Postfix reads the file; sendmail ends the
// entry there). An indented line with no entry above it is an error.
//
// The name is a local part without a domain, folded to lower case (as both
// sendmail and Postfix do); one that holds spaces, "#", ":" or "@" is written
// in double quotes. A name given twice is an error. Targets are separated by
// commas outside double quotes, angle brackets and parentheses, and are:
//
//	name            a local name: another alias, else a local user (Local)
//	\name           the user's own mailbox, with no alias or .forward (Mailbox)
//	user@domain     an address: Name <user@domain> and "quoted"@domain too;
//	                in a local domain it is a local name again (Address)
//	|command        a pipe; "|command, with commas" when quoted (Pipe)
//	/path/file      a file the message is appended to, mbox style (Append)
//	:include:/path  the targets listed in /path, one or more a line (Include)
//
// Every bad line is reported as "file:line: reason" and parsing goes on, so
// that newaliases names them all.
//
// :include: files and ~/.forward files hold the same targets, comma-separated,
// one or more a line, with blank and "#" lines skipped and no continuation.
//
// # The database
//
// newaliases compiles FILE into FILE.cdb (DBPath), a cdb (package cdb) with
// one record per alias, key the folded name, value the targets each as
// kind byte, uvarint line, uvarint length, text. Two records keyed with a
// leading NUL (no alias name holds one) say the format ("\x00format":
// "yubin-aliases 1") and which text it was compiled from ("\x00source":
// "SIZE MTIME-NANOSECONDS" of the aliases file as read). The database is
// written to a temporary file in the same directory, fsync'd, renamed over
// FILE.cdb and the directory fsync'd: readers see the old or the new
// database, never a mix, and a crash leaves one of them.
//
// Open uses the database when it was compiled from the text as it is now (the
// same size and modification time); otherwise, or when there is no database,
// it parses the text and says so in a warning for the caller to log. A group-
// or world-writable aliases file or database is refused: its pipes would run
// as the mail owner.
//
// postmaster and mailer-daemon resolve to root when the file does not name
// them (RFC 5321 §4.5.1 requires postmaster), so they always exist.
//
// # Expansion
//
// DB.Expand turns one recipient into Deliveries, each one copy of the message:
// a local user's mailbox, a remote address to relay to, a command to pipe
// into or a file to append to, with the envelope sender for that copy, the
// alias it came through, and for pipes and files the user to run as.
//
//   - Aliases expand recursively, to at most MaxDepth (10, sendmail's
//     MaxAliasRecursion) levels of aliases, :include: and .forward files; a
//     branch deeper than that fails with ErrTooDeep.
//   - Loops: a name met again inside its own expansion is a self-reference.
//     When it is a user, the copy goes to that user's mailbox (sendmail's
//     self_reference: "bob: bob, alice" keeps a copy for bob); otherwise the
//     looping branch is dropped, as sendmail drops it, with a warning, and the
//     rest of the list is delivered. A recipient left with nothing but loops
//     fails with ErrLoop.
//   - Duplicates: each mailbox, address, command (per user it runs as) and file
//     gets one copy; an alias or include met twice is expanded once.
//   - An :include: file with no members delivers nothing, as in sendmail (an
//     empty mailing list).
//   - At most MaxTargets (10,000) targets are visited for one recipient;
//     beyond that Expand fails with ErrTooMany and nothing is delivered.
//   - owner-NAME: while expanding alias NAME, when an alias owner-NAME exists,
//     the copies get envelope sender owner-NAME@Domain, so that bounces go to
//     the list's owner rather than the poster (sendmail's aliases(5); Postfix's
//     default, expand_owner_alias = no). A nested list without its own owner
//     keeps the nearest owner above it. The owner of owner-NAME is
//     owner-owner. A null sender (a bounce) stays null: a bounce is never
//     bounced.
//   - A user with no alias has their ~/.forward read when it is a regular
//     file owned by the user or root and not group- or world-writable
//     (sendmail's rules); otherwise it is ignored, with a warning, and the
//     copy goes to the mailbox. A .forward with a bad line is ignored the same
//     way: the mail stays with its user. \user in a .forward keeps a copy.
//   - Pipes and files run as the mail owner when named in the aliases file,
//     as the user when named in their .forward. From an :include: file they
//     are allowed only when the file is owned by root or by that same user
//     (the mail owner, or the .forward's user) and is not group- or
//     world-writable; otherwise they fail with ErrUnsafe. (sendmail runs them
//     as the include file's owner unless the file is unsafe; Postfix refuses
//     them by default.)
package aliases

import (
	"errors"
	"fmt"
	"strconv"
)

// Kind says what a target or a delivery is.
type Kind int

const (
	// Local is a bare local name: an alias, else a user (target only).
	Local Kind = iota + 1
	// Mailbox is a user's own mailbox: \user as a target; as a delivery, the
	// copy to hand to deliver.
	Mailbox
	// Address is user@domain; as a delivery, a remote address to relay to.
	Address
	// Include is :include:/path (target only).
	Include
	// Pipe is |command: the message goes to the command's standard input.
	Pipe
	// Append is /path: the message is appended to the file, mbox style.
	Append
	// Failed is a delivery that cannot be made; Delivery.Err says why.
	Failed
)

func (k Kind) String() string {
	switch k {
	case Local:
		return "local"
	case Mailbox:
		return "mailbox"
	case Address:
		return "address"
	case Include:
		return "include"
	case Pipe:
		return "pipe"
	case Append:
		return "file"
	case Failed:
		return "failed"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Target is one destination written on the right of an alias, or on a line
// of an :include: or .forward file.
type Target struct {
	Kind  Kind
	Value string // name (folded), address, command, path
	Line  int    // line of the file it is written on
}

func (t Target) String() string {
	switch t.Kind {
	case Mailbox:
		return `\` + t.Value
	case Include:
		return ":include:" + t.Value
	case Pipe:
		return "|" + t.Value
	}
	return t.Value
}

// Alias is one entry of the aliases file.
type Alias struct {
	Name    string // folded to lower case, unquoted
	Targets []Target
	Line    int    // where the entry starts
	Value   string // the text after the colon, continuation lines joined (for newaliases' count)
}

// Error is a problem on one line of a file.
type Error struct {
	File string
	Line int // 0 when it concerns the whole file
	Err  error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

var (
	// ErrNoUser: a local name that is neither an alias nor a user.
	ErrNoUser = errors.New("no such user or alias")
	// ErrLoop: the expansion loops back on itself and delivers nothing.
	ErrLoop = errors.New("alias loop")
	// ErrTooDeep: aliases nested deeper than MaxDepth.
	ErrTooDeep = errors.New("aliases nested too deep")
	// ErrTooMany: a recipient expands to more than MaxTargets targets.
	ErrTooMany = errors.New("alias expands to too many targets")
	// ErrUnsafe: a pipe or file from a file that others could have written.
	ErrUnsafe = errors.New("unsafe for pipes and files")
	// ErrForwardIgnored: a user's .forward was not used (a warning).
	ErrForwardIgnored = errors.New(".forward ignored")
	// ErrUnsafeFile: the aliases file or database is group- or world-writable.
	ErrUnsafeFile = errors.New("group- or world-writable")
)
