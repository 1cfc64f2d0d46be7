package pop3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Files pop3d keeps in the root of a Maildir, beside tmp/, new/ and cur/
// (names without a leading dot, so that no Maildir++ reader takes them for
// folders; Courier's pop3d keeps its courierpop3dsizelist there too).
const (
	lockFile  = "yubin-pop3.lock"  // flock'd for the whole session
	sizesFile = "yubin-pop3.sizes" // CRLF sizes already counted
)

// ErrInUse: another POP3 session holds the maildrop (RFC 2449 [IN-USE]).
var ErrInUse = errors.New("maildrop in use by another session")

// message is one message of the maildrop as the session sees it.
type message struct {
	sub    string // "cur" (where every message is once the session starts)
	name   string // the file name in sub: base[:2,FLAGS]
	uid    string // UIDL: from base, the Maildir unique name
	size   int64  // octets on the wire with CRLF line ends (RFC 1939 LIST)
	seen   bool   // retrieved in this session: flag S at QUIT
	delete bool   // DELE'd in this session
}

// maildrop is a locked Maildir and the snapshot of its messages taken when
// the session started (package comment, Maildir).
type maildrop struct {
	dir  string
	lock *os.File
	msgs []*message
}

// openMaildrop locks the Maildir dir (creating it when missing), moves new/
// into cur/ and lists the messages. The caller already runs as the owner.
func openMaildrop(dir string) (*maildrop, error) {
	// A user without mail yet gets an empty Maildir, parents included,
	// as deliver would make it (internal/maildir).
	for _, d := range []string{filepath.Join(dir, "tmp"), filepath.Join(dir, "new"), filepath.Join(dir, "cur")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("%s: lock: %w", dir, err)
	}
	md := &maildrop{dir: dir, lock: lock}
	if err := md.scan(); err != nil {
		md.close()
		return nil, err
	}
	return md, nil
}

// close releases the lock.
func (md *maildrop) close() {
	if md.lock != nil {
		md.lock.Close()
		md.lock = nil
	}
}

// scan moves new/ to cur/ and lists cur/, in delivery order.
func (md *maildrop) scan() error {
	news, err := readNames(filepath.Join(md.dir, "new"))
	if err != nil {
		return err
	}
	for _, name := range news {
		base, _, _ := strings.Cut(name, ":")
		err := os.Rename(filepath.Join(md.dir, "new", name), filepath.Join(md.dir, "cur", base+":2,"))
		if err != nil && !errors.Is(err, os.ErrNotExist) { // another reader moved it
			return err
		}
	}
	names, err := readNames(filepath.Join(md.dir, "cur"))
	if err != nil {
		return err
	}
	cache := md.readSizes()
	counted := false
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		base, _, _ := strings.Cut(name, ":")
		uid := uidOf(base)
		if seen[uid] {
			continue // the same message twice: a copy left by a crash
		}
		seen[uid] = true
		size, ok := wireSizeFromName(base)
		if !ok {
			size, ok = cache[base]
		}
		if !ok {
			size, err = wireSizeOfFile(filepath.Join(md.dir, "cur", name))
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since the listing
			}
			if err != nil {
				return err
			}
			counted = true
		}
		cache[base] = size
		md.msgs = append(md.msgs, &message{sub: "cur", name: name, uid: uid, size: size})
	}
	slices.SortStableFunc(md.msgs, func(a, b *message) int { return compareNames(a.name, b.name) })
	if counted || len(cache) > len(md.msgs) {
		md.writeSizes()
	}
	return nil
}

// readNames lists a directory's file names, skipping dot files.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	keep := names[:0]
	for _, n := range names {
		if n != "" && n[0] != '.' {
			keep = append(keep, n)
		}
	}
	return keep, nil
}

// compareNames orders Maildir names by their leading delivery time in
// seconds, then as strings: delivery order for names of every writer.
func compareNames(a, b string) int {
	sa, _, _ := strings.Cut(a, ".")
	sb, _, _ := strings.Cut(b, ".")
	na, erra := strconv.ParseInt(sa, 10, 64)
	nb, errb := strconv.ParseInt(sb, 10, 64)
	if erra == nil && errb == nil && na != nb {
		if na < nb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// uidOf derives the UIDL of a message from its Maildir unique name: the name
// itself when RFC 1939 §7 allows it (1 to 70 characters 0x21..0x7E),
// otherwise a digest of it. Either way it never changes while the file
// lives, whichever session or program lists it.
func uidOf(base string) string {
	ok := len(base) > 0 && len(base) <= 70
	for i := 0; ok && i < len(base); i++ {
		ok = base[i] >= 0x21 && base[i] <= 0x7e
	}
	if ok {
		return base
	}
	return "X" + fnv128(base)
}

// fnv128 is the FNV-1a 128-bit hash of s in hex: stable, no dependency.
func fnv128(s string) string {
	// Two FNV-1a 64 streams with different offsets, for 128 bits.
	h1, h2 := uint64(14695981039346656037), uint64(0x6c62272e07bb0142)
	for i := 0; i < len(s); i++ {
		h1 = (h1 ^ uint64(s[i])) * 1099511628211
		h2 = (h2 ^ uint64(s[i])) * 1099511628211
	}
	return fmt.Sprintf("%016x%016x", h1, h2)
}

// wireSizeFromName reads Dovecot's ",W=" (the size with CRLF line ends)
// from a unique name. ",S=" is the size of the file, which differs when its
// lines end in LF alone, and so is no use for LIST.
func wireSizeFromName(base string) (int64, bool) {
	for _, f := range strings.Split(base, ",")[1:] {
		if v, ok := strings.CutPrefix(f, "W="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

// wireSizeOfFile counts the octets that RETR sends for the file, without
// dot-stuffing and terminator: every LF becomes CRLF, and a last line
// without an end gets one.
func wireSizeOfFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var size int64
	var last byte
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		b := buf[:n]
		size += int64(n)
		for i := bytes.IndexByte(b, '\n'); i >= 0; {
			prev := last
			if i > 0 {
				prev = b[i-1]
			}
			if prev != '\r' {
				size++
			}
			j := bytes.IndexByte(b[i+1:], '\n')
			if j < 0 {
				break
			}
			i += 1 + j
		}
		if n > 0 {
			last = b[n-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	switch {
	case size > 0 && last == '\r':
		size++ // a last line ending in CR alone gets its LF
	case size > 0 && last != '\n':
		size += 2
	}
	return size, nil
}

// readSizes reads the size cache: "base size" lines. A damaged cache is
// only work to redo.
func (md *maildrop) readSizes() map[string]int64 {
	m := make(map[string]int64)
	data, err := os.ReadFile(filepath.Join(md.dir, sizesFile))
	if err != nil {
		return m
	}
	for line := range strings.Lines(string(data)) {
		base, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		size, err := strconv.ParseInt(n, 10, 64)
		if ok && err == nil && size >= 0 {
			m[base] = size
		}
	}
	return m
}

// writeSizes replaces the size cache with the sizes of the listed messages
// (written in tmp/, renamed into place; no fsync: it is only a cache).
func (md *maildrop) writeSizes() {
	var b strings.Builder
	for _, m := range md.msgs {
		base, _, _ := strings.Cut(m.name, ":")
		b.WriteString(base + " " + strconv.FormatInt(m.size, 10) + "\n")
	}
	tmp := filepath.Join(md.dir, "tmp", sizesFile+"."+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return
	}
	if os.Rename(tmp, filepath.Join(md.dir, sizesFile)) != nil {
		os.Remove(tmp)
	}
}

// open opens message m for reading. A plain descriptor, not an *os.File:
// os.Open's poller checks cost more than the read of a small message.
func (md *maildrop) open(m *message) (messageFile, error) {
	for {
		fd, err := syscall.Open(filepath.Join(md.dir, m.sub, m.name), syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: filepath.Join(md.dir, m.sub, m.name), Err: err}
		}
		return messageFile(fd), nil
	}
}

// messageFile is an open message file.
type messageFile int

func (f messageFile) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(f), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f messageFile) Close() error { return syscall.Close(int(f)) }

// commit is the UPDATE state (RFC 1939 §6): flag retrieved messages seen,
// remove deleted ones and record their removal in a Maildir++ quota. It
// returns how many were removed and the first error.
func (md *maildrop) commit() (int, error) {
	var firstErr error
	keep := func(err error) {
		if err != nil && !errors.Is(err, os.ErrNotExist) && firstErr == nil {
			firstErr = err
		}
	}
	removed, freed := 0, int64(0)
	for _, m := range md.msgs {
		path := filepath.Join(md.dir, m.sub, m.name)
		switch {
		case m.delete:
			st, err := os.Lstat(path)
			if err == nil {
				err = os.Remove(path)
			}
			keep(err)
			if err == nil {
				removed++
				freed += st.Size()
			}
		case m.seen:
			if name := withFlag(m.name, 'S'); name != m.name {
				keep(os.Rename(path, filepath.Join(md.dir, m.sub, name)))
			}
		}
	}
	if removed > 0 {
		if d, err := os.Open(filepath.Join(md.dir, "cur")); err == nil {
			keep(d.Sync()) // the removals survive a crash
			d.Close()
		}
		md.quotaRemoved(freed, removed)
	}
	return removed, firstErr
}

// withFlag adds flag to a Maildir name's ":2,FLAGS" info, keeping the flags
// in ASCII order as the specification asks.
func withFlag(name string, flag byte) string {
	base, info, ok := strings.Cut(name, ":")
	if !ok {
		return base + ":2," + string(flag)
	}
	flags, ok := strings.CutPrefix(info, "2,")
	if !ok || strings.IndexByte(flags, flag) >= 0 {
		return name // experimental info, or already set
	}
	fs := []byte(flags + string(flag))
	slices.Sort(fs)
	return base + ":2," + string(fs)
}

// quotaRemoved appends "-BYTES -COUNT" to a Maildir++ maildirsize, as the
// specification asks of whoever removes messages; no file, no quota.
func (md *maildrop) quotaRemoved(bytes int64, count int) {
	f, err := os.OpenFile(filepath.Join(md.dir, "maildirsize"), os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "-%d -%d\n", bytes, count)
}
