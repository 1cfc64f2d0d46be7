// Package maildir stores mail in Maildirs (https://cr.yp.to/proto/maildir.html),
// durably, with Maildir++ quotas (Courier's README.maildirquota). Reading
// mailboxes (flags, cur/, folders) is left to github.com/emersion/go-maildir,
// which parses the names written here.
//
// # Layout
//
//	Maildir/               mode 0700, created with any missing parent (0700)
//	  tmp/NAME             a message being written; never read by anyone else
//	  new/NAME             a delivered message nobody has seen yet
//	  cur/NAME:2,FLAGS     seen messages (moved there by readers, not here)
//	  maildirsize          optional Maildir++ quota (see below)
//
// Messages are files of mode 0600, owned by whoever delivers (the caller
// switches to the mailbox owner first), holding the message exactly as given.
//
// # Names
//
// NAME is SECONDS.MusecPpidQnRrand.HOST,S=SIZE: the spec's three dot-separated
// parts. The middle one, the delivery identifier, joins the microsecond of
// the same clock reading (M), the process ID (P), the count of deliveries
// made by this process (Q) and 64 random bits (R), so that no two processes
// of this host ever make the same name, even with a pid reused within a
// second. HOST is gethostname(2) with "/" as \057, ":" as \072 and "," as
// \054. SIZE is the file's size in bytes (Maildir++: quota recalculation
// reads it from the name instead of calling stat).
//
// # Delivery (the guarantee behind deliver's exit 0)
//
// Deliver creates tmp/NAME (O_EXCL, 0600), writes the message, fsyncs and
// closes the file, links it to new/NAME (link(2) never replaces a file; a
// rename is used only where the filesystem has no hard links), fsyncs new/
// and then removes tmp/NAME. Only then has the message been delivered. On
// any error before the link the tmp file is removed; after it, the new/ file
// is removed too if new/ could not be fsync'd, so that the caller's retry
// does not deliver twice. A crash (kill -9, power loss) before the link
// leaves a file in tmp/ that no reader lists (readers delete tmp/ files older
// than 36 hours, as the spec says); nothing in new/ is ever partial.
// Directories that Init creates are fsync'd into their parents, so a new
// Maildir survives power loss as well.
//
// # Quota
//
// A Maildir with a file maildirsize has a Maildir++ quota. Its first line
// defines it, "NNNS,MMMC": at most NNN bytes and MMM messages (either may be
// left out; 0 means no limit). Every other line is "BYTES COUNT", a change in
// usage (negative for removals); the usage is their sum. A message that
// would take the usage over either limit is refused with a *QuotaError
// (errors.Is ErrOverQuota), which the caller treats as temporary. After a
// delivery the line "SIZE 1" is appended in one write(2) (O_APPEND); it is
// not fsync'd: the quota is advisory, and lost lines are corrected by the
// next recalculation.
//
// As the specification asks, the usage is recalculated from the files of
// new/ and cur/ of the Maildir and of its folders (".NAME" subdirectories,
// except .Trash) when maildirsize holds 5120 bytes or more, when a line is
// not understood, or when a message would go over quota and the file is
// older than 15 minutes. The new maildirsize is written in tmp/ and renamed
// over the old one. A first line that is not a quota definition is an error
// (temporary: mail waits until it is fixed).
package maildir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"yubin/internal/crashpoint"
	"yubin/internal/safeio"
)

// Dir is the path of a Maildir: the directory that holds tmp/, new/ and cur/.
type Dir string

// Init creates the Maildir, its tmp/, new/ and cur/ and any missing parent
// directory, each with mode 0700, and fsyncs the directory that holds each
// one it created. What exists is left as it is.
func (d Dir) Init() error {
	for _, p := range []string{string(d), d.path("tmp"), d.path("new"), d.path("cur")} {
		if err := mkdir(p); err != nil {
			return fmt.Errorf("maildir %s: %w", d, err)
		}
	}
	return nil
}

// mkdir makes dir (mode 0700) and, when needed, its parents, fsyncing the
// parent of every directory it creates.
func mkdir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrNotExist) && filepath.Dir(dir) != dir {
		if err := mkdir(filepath.Dir(dir)); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o700)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// The umask must not change the mode the spec and our readers expect.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return safeio.SyncDir(filepath.Dir(dir))
}

func (d Dir) path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// Deliver stores the message of size bytes read from r in new/, as the
// package comment describes, and returns its name there. The Maildir must
// exist (Init). A message over the Maildir++ quota is refused with a
// *QuotaError; on any error nothing is left in new/ or tmp/.
func (d Dir) Deliver(r io.Reader, size int64) (string, error) {
	quota, err := d.checkQuota(size)
	if err != nil {
		return "", err
	}
	name, tmp, f, err := d.create(size)
	if err != nil {
		return "", fmt.Errorf("maildir %s: %w", d, err)
	}
	crashpoint.Here("maildir-created")
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("maildir %s: %w", d, err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		return fail(fmt.Errorf("write %s: %w", tmp, err))
	}
	if n != size {
		return fail(fmt.Errorf("write %s: message is %d bytes, %d announced", tmp, n, size))
	}
	crashpoint.Here("maildir-written")
	if err := safeio.SyncFile(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("maildir %s: %w", d, err)
	}
	crashpoint.Here("maildir-synced")
	dst := d.path("new", name)
	if err := link(tmp, dst); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("maildir %s: %w", d, err)
	}
	crashpoint.Here("maildir-linked")
	if err := safeio.SyncDir(d.path("new")); err != nil {
		// Complete but not known to be durable: take it back, so that
		// the caller's retry does not deliver it twice.
		os.Remove(dst)
		os.Remove(tmp)
		return "", fmt.Errorf("maildir %s: %w", d, err)
	}
	// Delivered. A tmp/ file left by a failing unlink is harmless: readers
	// clean tmp/, and its name is never reused.
	os.Remove(tmp)
	crashpoint.Here("maildir-delivered")
	if quota {
		d.addUsage(size, 1)
	}
	return name, nil
}

// create opens a new file in tmp/ under a fresh unique name.
func (d Dir) create(size int64) (name, path string, f *os.File, err error) {
	for range 3 {
		name = newName(size)
		path = d.path("tmp", name)
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			// Whatever the umask, the owner reads and writes and nobody else.
			if err = f.Chmod(0o600); err != nil {
				f.Close()
				os.Remove(path)
			}
			return name, path, f, err
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return "", "", nil, err
}

// link makes newpath a name of oldpath without replacing anything; where
// the filesystem has no hard links it renames, which the unique name makes
// just as safe.
func link(oldpath, newpath string) error {
	err := os.Link(oldpath, newpath)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOSYS) {
		if _, serr := os.Lstat(newpath); serr == nil {
			return err
		}
		return os.Rename(oldpath, newpath)
	}
	return err
}

var (
	deliveries atomic.Int64 // Q in names
	hostPart   = sync.OnceValue(func() string {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		return strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`).Replace(h)
	})
)

// newName returns a unique name for a message of size bytes (package
// comment, Names).
func newName(size int64) string {
	now := time.Now()
	var r [8]byte
	rand.Read(r[:]) // never fails (crypto/rand)
	var b strings.Builder
	b.Grow(80)
	b.WriteString(strconv.FormatInt(now.Unix(), 10))
	b.WriteString(".M")
	b.WriteString(strconv.Itoa(now.Nanosecond() / 1000))
	b.WriteString("P")
	b.WriteString(strconv.Itoa(os.Getpid()))
	b.WriteString("Q")
	b.WriteString(strconv.FormatInt(deliveries.Add(1), 10))
	b.WriteString("R")
	b.WriteString(hex.EncodeToString(r[:]))
	b.WriteString(".")
	b.WriteString(hostPart())
	b.WriteString(",S=")
	b.WriteString(strconv.FormatInt(size, 10))
	return b.String()
}
