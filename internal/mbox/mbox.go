// Package mbox delivers one message to a file named in an aliases or
// ~/.forward file (`/path/file`), appending it in Unix mbox format as
// Postfix's local(8) does for external files (src/local/file.c,
// src/global/mbox_open.c, src/global/mail_copy.c).
//
// # Format
//
// Each message is appended as
//
//	From sender Thu Nov 28 04:16:31 2024      the separator (Envelope.FromLine)
//	Return-Path: <sender>                     Envelope.Header: always
//	X-Original-To: original-recipient         when known
//	Delivered-To: final-recipient             when known
//	the message, LF line endings, with ">From " for lines starting "From "
//	                                          an empty line
//
// The null sender is MAILER-DAEMON on the From_ line and <> in Return-Path.
// Quoting is mboxo: a '>' goes before a line that begins with "From " and
// before no other line, as Postfix (MAIL_COPY_QUOTE) and mail.local write,
// so that a file they also deliver to never mixes two conventions. (mboxrd
// would also quote ">From " lines, to make the quoting reversible; readers
// of either kind find the separators in our files.) A message whose last
// line lacks its newline gets one, then the empty line that ends it.
//
// # Which files
//
// The path must be absolute. "/dev/null" is accepted and discards the
// message, a special case that sendmail's mailfile() makes too so that file
// delivery can be restricted to regular files. Otherwise the rules are
// Postfix's safe_open, stricter where Postfix allows devices:
//   - an existing file is opened with O_NOFOLLOW: a symbolic link is refused;
//   - it must be a regular file with exactly one hard link, and not
//     executable (Postfix: "file is executable");
//   - a missing file is created with O_EXCL, mode 0600, owned by the user;
//   - a FIFO, socket, device or directory is refused.
//
// # Locking and atomicity
//
// Two locks, as Postfix takes them on Debian (mailbox_delivery_lock = fcntl,
// dotlock) and as Debian Policy §11.6 requires of every program that touches
// a mailbox, so that mutt, mailx, procmail, Dovecot and Postfix's own local(8)
// all exclude us: a kernel fcntl lock and the dot-lock file path.lock. They
// are taken in Policy's order, fcntl first, without blocking; when the
// dot-lock is busy the fcntl lock is let go before waiting and trying again,
// so no order of another program's can deadlock with us (see lock). The wait
// ends after Mailbox.LockTimeout (default 20 s, Postfix's 20 attempts × 1 s).
// flock is not taken: on Linux it and fcntl locks do not see each other, and
// the programs above use fcntl.
//
// With the locks held: the file's size is noted, the whole message is
// written, and the file is fsync'd. On any failure (a write error, a full
// disk, a quota, an error reading the message) the file is truncated back to
// the noted size before the locks are released, so no partial message
// remains — exactly what Postfix's mail_copy does.
//
// # Privileges
//
// When the process is root, the file is opened, created, locked and
// written with the file-system identity of Mailbox.Uid:Gid and no
// supplementary groups, on a thread of its own (see internal/identity); the rest of the
// process keeps its identity. Uid or Gid 0 is refused then: like Postfix,
// yubin never writes a user-named file as root. When the process is not
// root, Uid and Gid are ignored and the file is written as the process is.
//
// # Errors
//
// Append returns nil or an *Error with the RFC 3463 status code that
// Postfix's mbox_dsn gives:
//
//	lock not obtained in time, file changed under us   4.2.0  temporary
//	ENOSPC (file system full)                          4.3.0  temporary
//	EDQUOT, EFBIG (quota, file size limit)             5.2.2  permanent
//	not allowed: symlink, links, not a regular file,
//	  EACCES, EPERM, missing directory, EISDIR         5.2.0  permanent
//	file is executable                                 5.7.1  permanent
//	caller's mistake: relative path, uid 0 as root     4.3.5  temporary
//	anything else (EIO, reading the message, ...)      4.3.0  temporary
//
// The last line departs from Postfix, which bounces unknown write errors
// (5.3.0): here mail waits rather than bounce on what may be a passing
// fault.
package mbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"yubin/internal/identity"
)

// Mailbox is one file delivery.
type Mailbox struct {
	// Path is the file, absolute.
	Path string
	// Uid and Gid are the user the file is written as when the process is
	// root (then both must be non-zero); ignored otherwise.
	Uid, Gid int
	// Envelope gives the From_ line and the trace headers.
	Envelope Envelope
	// LockTimeout bounds the wait for the locks; zero means
	// DefaultLockTimeout.
	LockTimeout time.Duration
}

// Error is a failed file delivery.
type Error struct {
	Path   string
	Code   string // RFC 3463 enhanced status, "4.2.0"
	Reason string // what went wrong, for the log and the bounce
	Err    error  // the cause, if any
}

func (e *Error) Error() string {
	s := "mbox " + e.Path + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether delivery may succeed later (a 4.x.x code).
func (e *Error) Temporary() bool { return e.Code == "" || e.Code[0] != '5' }

// DSN returns the enhanced status code, "x.y.z".
func (e *Error) DSN() string { return e.Code }

// Append appends msg (LF line endings, as queued) to mb.Path. ctx bounds the
// wait for the locks only.
func Append(ctx context.Context, mb Mailbox, msg io.Reader) error {
	path := mb.Path
	if !filepath.IsAbs(path) {
		return &Error{Path: path, Code: "4.3.5", Reason: "mail system configuration error: path is not absolute"}
	}
	if mb.LockTimeout <= 0 {
		mb.LockTimeout = DefaultLockTimeout
	}
	var result error
	err := identity.AsUser(mb.Uid, mb.Gid, func() error {
		result = appendFile(ctx, mb, msg)
		return nil
	})
	if err != nil {
		return &Error{Path: path, Code: "4.3.5", Reason: "mail system configuration error", Err: err}
	}
	return result
}

func appendFile(ctx context.Context, mb Mailbox, msg io.Reader) error {
	path := mb.Path
	if filepath.Clean(path) == "/dev/null" {
		if _, err := io.Copy(io.Discard, msg); err != nil {
			return &Error{Path: path, Code: "4.3.0", Reason: "error reading message", Err: err}
		}
		return nil
	}
	f, err := open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	unlock, err := lock(ctx, f, path, mb.LockTimeout)
	if err != nil {
		if errors.Is(err, errLocked) {
			return &Error{Path: path, Code: "4.2.0", Reason: "cannot lock mailbox for exclusive access", Err: err}
		}
		return &Error{Path: path, Code: "4.3.0", Reason: "cannot lock mailbox", Err: err}
	}
	defer unlock()

	// The file may have been replaced or linked while we waited for the
	// lock (mbox_open.c: "target file status changed unexpectedly").
	var st, lst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return &Error{Path: path, Code: "4.3.0", Reason: "cannot stat file", Err: err}
	}
	if err := unix.Lstat(path, &lst); err != nil || st.Nlink != 1 || st.Dev != lst.Dev || st.Ino != lst.Ino {
		return &Error{Path: path, Code: "4.2.0", Reason: "file status changed unexpectedly", Err: err}
	}
	return write(f, st.Size, mb.Envelope, msg)
}

// open opens or creates path for appending, by Postfix's safe_open rules.
func open(path string) (*os.File, error) {
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags, 0)
	if errors.Is(err, unix.ENOENT) {
		fd, err = unix.Open(path, flags|unix.O_CREAT|unix.O_EXCL, 0o600)
		if errors.Is(err, unix.EEXIST) { // someone else created it first
			fd, err = unix.Open(path, flags, 0)
		}
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &Error{Path: path, Code: "5.2.0", Reason: "file is a symbolic link"}
		}
		if errors.Is(err, unix.ENXIO) { // FIFO with no reader, or socket
			return nil, &Error{Path: path, Code: "5.2.0", Reason: "not a regular file"}
		}
		return nil, openError(path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &Error{Path: path, Code: "4.3.0", Reason: "cannot stat file", Err: err}
	}
	reason, code := "", "5.2.0"
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		reason = "not a regular file"
	case st.Nlink != 1:
		reason = fmt.Sprintf("file has %d hard links", st.Nlink)
	case st.Mode&0o111 != 0:
		reason, code = "file is executable", "5.7.1"
	}
	if reason != "" {
		unix.Close(fd)
		return nil, &Error{Path: path, Code: code, Reason: reason}
	}
	// O_NONBLOCK only guarded the open against FIFOs and devices.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &Error{Path: path, Code: "4.3.0", Reason: "cannot open file", Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// write appends the message at the end of f, whose size is size, and makes
// it durable; on failure it cuts the file back to size.
func write(f *os.File, size int64, env Envelope, msg io.Reader) error {
	path := f.Name()
	bw := bufio.NewWriterSize(f, 64<<10)
	bw.WriteString(env.FromLine())
	bw.WriteString(env.Header())
	q := newQuoter(bw)
	src := &errReader{r: msg}
	_, err := io.Copy(q, src)
	if err == nil {
		err = q.Close()
	}
	if err == nil {
		_, err = bw.WriteString("\n")
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		return nil
	}
	if terr := f.Truncate(size); terr != nil {
		err = fmt.Errorf("%w (and truncating back to %d bytes: %v)", err, size, terr)
	} else {
		f.Sync()
	}
	if src.err != nil {
		return &Error{Path: path, Code: "4.3.0", Reason: "error reading message", Err: src.err}
	}
	return &Error{Path: path, Code: writeCode(err), Reason: "cannot append message", Err: err}
}

// openError classifies an error from open(2) (mbox_dsn with 5.2.0 for the
// errors that say the user may not have this file).
func openError(path string, err error) error {
	code := "4.3.0"
	switch {
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOENT),
		errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EISDIR), errors.Is(err, unix.ENAMETOOLONG):
		code = "5.2.0"
	default:
		code = writeCode(err)
	}
	return &Error{Path: path, Code: code, Reason: "cannot open file", Err: err}
}

// writeCode is Postfix's mbox_dsn, with unknown errors temporary.
func writeCode(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "4.3.0"
	}
	switch errno {
	case unix.EAGAIN, unix.ESTALE:
		return "4.2.0"
	case unix.ENOSPC:
		return "4.3.0"
	case unix.EDQUOT, unix.EFBIG:
		return "5.2.2"
	}
	return "4.3.0"
}

// errReader remembers a read error, to tell it from a write error.
type errReader struct {
	r   io.Reader
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
