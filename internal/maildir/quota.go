package maildir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrOverQuota: the message would take the Maildir over its Maildir++ quota.
var ErrOverQuota = errors.New("mailbox over quota")

// Maildir++ (README.maildirquota): maildirsize is recalculated when it has
// grown to recalcSize bytes, or when it refuses a message and is older
// than staleAfter.
const (
	recalcSize = 5120
	staleAfter = 15 * time.Minute
	// maxSizeFile bounds what is read of a maildirsize file.
	maxSizeFile = 1 << 20
)

// Quota is a Maildir++ quota definition; a zero field means no limit.
type Quota struct {
	Bytes int64 // "S"
	Count int64 // "C"
}

// Usage is what a Maildir holds, as maildirsize counts it.
type Usage struct {
	Bytes, Count int64
}

// QuotaError is a message refused because of the quota; errors.Is(err,
// ErrOverQuota) holds.
type QuotaError struct {
	File  string // the maildirsize file
	Quota Quota
	Usage Usage
	Size  int64 // the refused message
}

func (e *QuotaError) Error() string {
	if e.Quota.Count > 0 && e.Usage.Count+1 > e.Quota.Count {
		return fmt.Sprintf("mailbox over quota: it holds %d messages, the limit is %d (%s)",
			e.Usage.Count, e.Quota.Count, e.File)
	}
	return fmt.Sprintf("mailbox over quota: %d bytes used of %d, the message has %d (%s)",
		e.Usage.Bytes, e.Quota.Bytes, e.Size, e.File)
}

func (e *QuotaError) Is(target error) bool { return target == ErrOverQuota }

// allows reports whether one more message of size bytes stays within q.
func (q Quota) allows(u Usage, size int64) bool {
	return (q.Bytes <= 0 || u.Bytes+size <= q.Bytes) && (q.Count <= 0 || u.Count+1 <= q.Count)
}

// parseQuota reads a quota definition: comma-separated NNNS (bytes) and
// NNNC (messages); empty means no limit.
func parseQuota(s string) (Quota, error) {
	var q Quota
	if strings.TrimSpace(s) == "" {
		return q, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if len(f) < 2 {
			return q, fmt.Errorf("bad quota definition %q", s)
		}
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("bad quota definition %q", s)
		}
		switch f[len(f)-1] {
		case 'S':
			q.Bytes = n
		case 'C':
			q.Count = n
		default:
			return q, fmt.Errorf("bad quota definition %q: %q is neither S (bytes) nor C (messages)", s, f[len(f)-1:])
		}
	}
	return q, nil
}

// parseSizeFile reads a maildirsize file: the quota definition, the sum of
// the usage lines, and whether a usage line was not understood (a line cut
// short by a crash counts), which calls for a recalculation. Only a bad
// definition is an error.
func parseSizeFile(data []byte) (q Quota, u Usage, broken bool, err error) {
	def, rest, _ := bytes.Cut(data, []byte("\n"))
	if q, err = parseQuota(string(def)); err != nil {
		return q, u, false, err
	}
	for len(rest) > 0 {
		line, more, complete := bytes.Cut(rest, []byte("\n"))
		rest = more
		f := strings.Fields(string(line))
		if !complete || len(f) != 2 {
			broken = true
			continue
		}
		b, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			broken = true
			continue
		}
		u.Bytes += b
		u.Count += c
	}
	return q, u, broken, nil
}

// checkQuota refuses a message of size bytes that the Maildir's quota has
// no room for, and reports whether the Maildir has a maildirsize file (to
// which the delivery must then be added).
func (d Dir) checkQuota(size int64) (bool, error) {
	file := d.path("maildirsize")
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("maildir %s: %w", d, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("maildir %s: %w", d, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSizeFile))
	if err != nil {
		return false, fmt.Errorf("maildir %s: %w", d, err)
	}
	q, u, broken, err := parseSizeFile(data)
	if err != nil {
		return false, fmt.Errorf("%s:1: %w", file, err)
	}
	def, _, _ := bytes.Cut(data, []byte("\n"))
	recalculated := false
	if broken || st.Size() >= recalcSize {
		if u, err = d.recalculate(string(def)); err != nil {
			return false, err
		}
		recalculated = true
	}
	if !q.allows(u, size) && !recalculated && time.Since(st.ModTime()) > staleAfter {
		if u, err = d.recalculate(string(def)); err != nil {
			return false, err
		}
	}
	if !q.allows(u, size) {
		return false, &QuotaError{File: file, Quota: q, Usage: u, Size: size}
	}
	return true, nil
}

// recalculate counts the messages in new/ and cur/ of the Maildir and of its
// folders except .Trash, and replaces maildirsize with def and that sum.
func (d Dir) recalculate(def string) (Usage, error) {
	var u Usage
	dirs := []string{string(d)}
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return u, fmt.Errorf("maildir %s: %w", d, err)
	}
	for _, e := range entries {
		if n := e.Name(); e.IsDir() && len(n) > 1 && n[0] == '.' && n != ".." && n != ".Trash" {
			dirs = append(dirs, d.path(n))
		}
	}
	for _, dir := range dirs {
		for _, sub := range []string{"new", "cur"} {
			if err := addDir(filepath.Join(dir, sub), &u); err != nil {
				return u, fmt.Errorf("maildir %s: %w", d, err)
			}
		}
	}
	// A failure to write the new file leaves the old one, which is only
	// recalculated again next time.
	tmp := d.path("tmp", newName(0))
	content := fmt.Sprintf("%s\n%d %d\n", def, u.Bytes, u.Count)
	if os.WriteFile(tmp, []byte(content), 0o600) == nil {
		os.Rename(tmp, d.path("maildirsize"))
	}
	os.Remove(tmp)
	return u, nil
}

// addDir adds the messages in dir to u: their size from the S= in their
// names, or stat's when a name has none.
func addDir(dir string, u *Usage) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		if name[0] == '.' {
			continue
		}
		size, ok := nameSize(name)
		if !ok {
			st, err := os.Lstat(filepath.Join(dir, name))
			if err != nil {
				continue // moved or removed meanwhile
			}
			size = st.Size()
		}
		u.Bytes += size
		u.Count++
	}
	return nil
}

// nameSize returns the S=SIZE of a Maildir++ file name.
func nameSize(name string) (int64, bool) {
	name, _, _ = strings.Cut(name, ":")
	_, v, ok := strings.Cut(name, ",S=")
	if !ok {
		return 0, false
	}
	v, _, _ = strings.Cut(v, ",")
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil && n >= 0
}

// addUsage appends a usage line to maildirsize in one write(2). Errors are
// ignored: the quota is advisory and recalculation repairs it.
func (d Dir) addUsage(bytes, count int64) {
	f, err := os.OpenFile(d.path("maildirsize"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	f.WriteString(strconv.FormatInt(bytes, 10) + " " + strconv.FormatInt(count, 10) + "\n")
	f.Close()
}
