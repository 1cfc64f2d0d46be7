package imapstore

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/emersion/go-imap/v2"

	"yubin/internal/safeio"
)

// The files the store keeps in every folder directory, and in the Maildir
// root for the whole account (package comment, On disk).
const (
	uidListFile       = "yubin-uidlist"
	lockFile          = "yubin-uidlist.lock"
	keywordsFile      = "yubin-keywords"
	subscriptionsFile = "subscriptions"
	uidListMagic      = "yubin-uidlist 1"
)

// message is one message of a folder as the store knows it (the fields in
// this order pack into 72 bytes: 100,000 of them are made at SELECT).
type message struct {
	base   string // the unique name: the file name up to ":2,"
	sub    string // "new" or "cur"
	info   string // the flag letters after ":2,", sorted
	size   int64  // octets as sent (CRLF line ends); -1: not known yet
	date   int64  // internal date, Unix seconds; 0: not known yet
	uid    imap.UID
	recent bool
}

// file is the message's path relative to its folder.
func (m *message) file() string {
	if m.sub == "new" && m.info == "" {
		return "new/" + m.base
	}
	return m.sub + "/" + m.base + ":2," + m.info
}

// folder is one Maildir (the account's root for INBOX, ".Name" below it
// otherwise) and its UID list.
type folder struct {
	dir         string
	uidValidity uint32
	uidNext     imap.UID
	recs        []*message // by UID; read through messages()
	lazy        *entries   // when not nil, the records are these lines', made on first need
	keywords    []string   // letter 'a'+i is keywords[i]

	stamps   [3]fileStamp // new/, cur/, the UID list at the last rescan
	trusted  bool         // stamps may stand for "nothing changed"
	movedNew bool         // the last rescan moved new/ to cur/
	saved    bool         // the UID list on disk holds all msgs knows, as of stamps
	gen      int          // counts the rescans, so that a session can skip comparing
}

// messages returns the folder's records by UID. After a rescan that took
// a settled list for the directory and had no records to merge it with
// (a session's first SELECT), they are parsed from the list's lines here,
// at their first use, not at SELECT.
func (f *folder) messages() []*message {
	if f.lazy != nil {
		f.recs, f.lazy = f.lazy.records(), nil
	}
	return f.recs
}

// lock takes the folder's lock (flock on yubin-uidlist.lock) and returns
// its release.
func (f *folder) lock() (func(), error) {
	l, err := os.OpenFile(filepath.Join(f.dir, lockFile), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX); err != nil {
		l.Close()
		return nil, fmt.Errorf("%s: lock: %w", f.dir, err)
	}
	return func() { l.Close() }, nil
}

// uidList is the content of yubin-uidlist.
type uidList struct {
	validity uint32
	next     imap.UID
	entries  *entries // by UID
	// The stamps of new/ and cur/ that the entries' places and flags
	// describe, and whether they had settled (were a second old) then:
	// only then may a later rescan take the list for the directory.
	dirs    [2]fileStamp
	settled bool
}

// entries are the lines of a UID list, checked when read and parsed into
// records on first need (records): a SELECT of a folder the list stands
// for needs only their count, the first without \Seen and whether any is
// in new/, which the check finds without making 100,000 records.
type entries struct {
	text        string // the lines "UID SIZE DATE PLACE UNIQUE-NAME\n"
	count       int
	firstUnseen int  // the sequence number of the first without 'S', 0: none
	inNew       bool // an entry's PLACE is "n"
	parsed      bool
	msgs        []*message // once parsed
	infos       []string   // the flags of msgs[i] as the list gave them
}

// records parses the lines (already checked) into records, once: the names
// are substrings of the list's text, the records one slice.
func (es *entries) records() []*message {
	if es.parsed {
		return es.msgs
	}
	slab := make([]message, es.count)
	es.msgs, es.infos = make([]*message, es.count), make([]string, es.count)
	body := es.text
	for i := range slab {
		end := strings.IndexByte(body, '\n')
		parseEntry(&slab[i], body[:end])
		body = body[end+1:]
		es.msgs[i], es.infos[i] = &slab[i], slab[i].info
	}
	es.parsed = true
	return es.msgs
}

// readUIDList reads dir's UID list. A missing or unreadable list is
// (nil, nil): the caller starts a new one with a new UIDVALIDITY. Every
// SELECT reads it, so it is only checked there, in one pass that makes
// nothing per line: the records are made on first need (entries.records).
func readUIDList(dir string) (*uidList, error) {
	data, err := readWhole(filepath.Join(dir, uidListFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The bytes are read into a buffer of their own and never written
	// again: they can be the string, without a copy of 6 MB for 100,000
	// messages (page faults are a fifth of a fresh session's SELECT).
	text := unsafe.String(unsafe.SliceData(data), len(data))
	first, body, _ := strings.Cut(text, "\n")
	head := strings.Fields(first)
	if len(head) != 7 || head[0]+" "+head[1] != uidListMagic || !strings.HasSuffix(text, "\n") {
		return nil, nil // damaged (a torn write cannot happen: rename)
	}
	v, err1 := strconv.ParseUint(head[2], 10, 32)
	n, err2 := strconv.ParseUint(head[3], 10, 32)
	if err1 != nil || err2 != nil || v == 0 || n == 0 {
		return nil, nil
	}
	l := &uidList{validity: uint32(v), next: imap.UID(n), settled: head[6] == "1"}
	for i, h := range head[4:6] {
		var st fileStamp
		if _, err := fmt.Sscanf(h, "%d:%d:%d", &st.mtime, &st.ino, &st.size); err != nil {
			l.settled = false
		}
		l.dirs[i] = st
	}
	es := &entries{text: body}
	var m, prev message
	rising := true // names in rising order are unique
	for body != "" {
		end := strings.IndexByte(body, '\n') // the text ends with one
		line := body[:end]
		body = body[end+1:]
		if !parseEntry(&m, line) || m.uid >= l.next || es.count > 0 && m.uid <= prev.uid {
			return nil, nil // UIDs must rise below UIDNEXT
		}
		rising = rising && (es.count == 0 || prev.base < m.base)
		es.count++
		if es.firstUnseen == 0 && !hasLetter(&m, 'S') {
			es.firstUnseen = es.count
		}
		es.inNew = es.inNew || m.sub == "new"
		prev = m
	}
	if !rising && !unique(es.records()) {
		return nil, nil
	}
	l.entries = es
	return l, nil
}

// parseEntry reads a line "UID SIZE DATE PLACE UNIQUE-NAME" into m.
func parseEntry(m *message, line string) bool {
	var f [4]string
	n, start := 0, 0
	for i := 0; i < len(line) && n < len(f); i++ {
		if line[i] == ' ' {
			f[n], start = line[start:i], i+1
			n++
		}
	}
	if n < len(f) {
		return false
	}
	line = line[start:]
	uid, ok := decimal(f[0])
	if !ok || uid == 0 || uid > math.MaxUint32 || line == "" {
		return false
	}
	*m = message{uid: imap.UID(uid), base: line, size: -1, sub: "new"}
	switch {
	case f[3] == "n":
	case strings.HasPrefix(f[3], "c,"):
		m.sub, m.info = "cur", f[3][2:]
	default:
		return false
	}
	if size, ok := decimal(f[1]); ok {
		m.size = size
	}
	m.date, _ = decimal(f[2]) // "-" is 0, not known
	return true
}

// decimal parses a number of 1 to 18 digits, the list's only kind (strconv
// costs a third of the list's parsing).
func decimal(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	return n, true
}

// unique reports whether no two messages have the same name. It sorts
// 64-bit hashes of the names (a map of 100,000 names costs twice as much)
// and compares the names themselves only when two hashes are equal.
func unique(msgs []*message) bool {
	seed := maphash.MakeSeed()
	hashes := make([]uint64, len(msgs))
	for i, m := range msgs {
		hashes[i] = maphash.String(seed, m.base)
	}
	slices.Sort(hashes)
	for i := 1; i < len(hashes); i++ {
		if hashes[i] == hashes[i-1] {
			seen := make(map[string]bool, len(msgs))
			for _, m := range msgs {
				if seen[m.base] {
					return false
				}
				seen[m.base] = true
			}
			return true
		}
	}
	return true
}

// writeUIDList replaces dir's UID list atomically: write a temporary file,
// fsync it, rename it over the list, fsync the directory.
func writeUIDList(dir string, l *uidList, msgs []*message) error {
	var b strings.Builder
	b.Grow(80 * (len(msgs) + 1))
	settled := "0"
	if l.settled {
		settled = "1"
	}
	fmt.Fprintf(&b, "%s %d %d %d:%d:%d %d:%d:%d %s\n", uidListMagic, l.validity, l.next,
		l.dirs[0].mtime, l.dirs[0].ino, l.dirs[0].size, l.dirs[1].mtime, l.dirs[1].ino, l.dirs[1].size, settled)
	for _, m := range msgs {
		b.WriteString(strconv.FormatUint(uint64(m.uid), 10))
		if m.size >= 0 {
			b.WriteString(" " + strconv.FormatInt(m.size, 10))
		} else {
			b.WriteString(" -")
		}
		if m.date > 0 {
			b.WriteString(" " + strconv.FormatInt(m.date, 10))
		} else {
			b.WriteString(" -")
		}
		if m.sub == "new" {
			b.WriteString(" n ")
		} else {
			b.WriteString(" c," + m.info + " ")
		}
		b.WriteString(m.base)
		b.WriteByte('\n')
	}
	return writeFileSync(filepath.Join(dir, uidListFile), []byte(b.String()))
}

// writeFileSync replaces path atomically and durably (internal/safeio).
func writeFileSync(path string, data []byte) error {
	return safeio.WriteFile(path, 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) error { return safeio.SyncDir(dir) }

// listing is what new/ and cur/ hold: unique name → (sub, info).
type listing map[string][2]string

func listDir(dir string) (listing, error) {
	// new/ before cur/: a message moved from new/ to cur/ meanwhile is then
	// seen twice rather than not at all.
	subs := [2]string{"new", "cur"}
	var names [2][]string
	for i, sub := range subs {
		d, err := os.Open(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		names[i], err = d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, sub, err)
		}
	}
	l := make(listing, len(names[0])+len(names[1])) // no growing: 100,000 names
	for i, sub := range subs {
		for _, n := range names[i] {
			if n == "" || n[0] == '.' {
				continue
			}
			base, info, _ := strings.Cut(n, ":2,")
			if strings.ContainsAny(base, " \n") {
				continue // cannot be a line of the UID list
			}
			l[base] = [2]string{sub, info}
		}
	}
	return l, nil
}

// sync brings the records up to date with the directory under the folder lock:
// messages of new/ are moved to cur/ (and become \Recent) when moveNew,
// messages gone from the directory leave the list, new ones get the next
// UIDs, and the UID list is rewritten when anything changed, so that no
// other session or later run can give another UID to the same message or
// the same UID to another message.
//
// A folder whose new/, cur/ and UID list are unchanged since the last
// rescan (same modification time, size and inode, the times older than
// that rescan by a second, so that a change within the clock's tick cannot
// hide) is not listed again: the check is three stat calls.
func (f *folder) sync(moveNew bool) error {
	st, ok := f.stamp()
	if ok && f.trusted && st == f.stamps && (!moveNew || f.movedNew) {
		return nil
	}
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return f.syncLocked(moveNew, false)
}

// saveCache writes down the sizes and dates the session learnt, and the
// places and flags of now; there is nothing to write when the session
// learnt nothing and the folder is as the last rescan left it.
func (f *folder) saveCache() error {
	if st, ok := f.stamp(); ok && f.saved && f.trusted && st == f.stamps {
		return nil
	}
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return f.syncLocked(false, true)
}

// fileStamp is what tells that a file or directory changed.
type fileStamp struct {
	mtime, size int64
	ino         uint64
}

// stamp stats new/, cur/ and the UID list.
func (f *folder) stamp() (st [3]fileStamp, ok bool) {
	for i, p := range []string{"new", "cur", uidListFile} {
		var sys syscall.Stat_t
		if err := syscall.Stat(filepath.Join(f.dir, p), &sys); err != nil {
			return st, false
		}
		st[i] = fileStamp{sys.Mtim.Nano(), sys.Size, sys.Ino}
	}
	return st, true
}

// syncLocked rescans the folder under its lock; flush writes the list even
// when only sizes, dates, flags or the directories' stamps are new.
func (f *folder) syncLocked(moveNew, flush bool) error {
	f.trusted = false
	f.gen++
	settled, err := f.rescan(moveNew, flush)
	if err != nil {
		return err
	}
	// The UID list changes only under the lock we hold, so its stamp is
	// exact; new/ and cur/ change without it, hence "settled".
	if st, ok := f.stamp(); ok {
		f.stamps, f.trusted, f.movedNew = st, settled, moveNew
	}
	return nil
}

// dirStamps stats new/ and cur/.
func (f *folder) dirStamps() (st [2]fileStamp, ok bool) {
	for i, p := range []string{"new", "cur"} {
		var sys syscall.Stat_t
		if err := syscall.Stat(filepath.Join(f.dir, p), &sys); err != nil {
			return st, false
		}
		st[i] = fileStamp{sys.Mtim.Nano(), sys.Size, sys.Ino}
	}
	return st, true
}

// rescan is syncLocked's work; it reports whether new/ and cur/ had
// settled (changed last a second before it started).
func (f *folder) rescan(moveNew, flush bool) (bool, error) {
	start := time.Now()
	old := f.messages() // the session's records, with what it learnt
	pre, preOK := f.dirStamps()
	list, err := readUIDList(f.dir)
	if err != nil {
		return false, err
	}
	dirty := false
	if list == nil {
		// No list (first use, or lost): every message gets a new UID, so
		// UIDVALIDITY must change (RFC 9051 §2.3.1.1).
		list = &uidList{validity: uint32(time.Now().Unix()), next: 1, entries: &entries{parsed: true}}
		last := max(f.uidValidity, lastValidity(f.dir))
		if last >= list.validity {
			list.validity = last + 1
		}
		if err := noteValidity(f.dir, list.validity); err != nil {
			return false, err
		}
		dirty = true
	}
	if f.keywords, err = readKeywords(f.dir); err != nil {
		return false, err
	}
	// The list describes the directory when nothing changed in new/ or
	// cur/ since it was written and they had settled then; new/ must be
	// listed anyway when its messages are to move.
	useList := preOK && list.settled && list.dirs == pre && !(moveNew && list.entries.inNew)
	// Then, with no records of the session's to merge them with, the
	// list's records are all there is: they are parsed on first need.
	lazy := useList && len(old) == 0
	var files listing // nil when the list stands for the directory
	if !useList {
		if files, err = listDir(f.dir); err != nil {
			return false, err
		}
		for _, e := range list.entries.records() {
			if _, ok := files[e.base]; !ok {
				// Gone, or being renamed while we read: read once more
				// before forgetting a UID for good.
				if files, err = listDir(f.dir); err != nil {
					return false, err
				}
				break
			}
		}
	}
	movedAny := false
	richer := false // the session knows sizes or dates the list lacks
	var listed []*message
	if !lazy {
		listed = list.entries.records()
	}
	msgs := make([]*message, 0, len(listed))
	j := 0 // old and the list are both in UID order: merge them
	for _, e := range listed {
		if files != nil {
			fi, ok := files[e.base]
			if !ok {
				dirty = true
				continue
			}
			delete(files, e.base) // what stays is new
			e.sub, e.info = fi[0], fi[1]
		}
		for j < len(old) && old[j].uid < e.uid {
			j++
		}
		if j < len(old) && old[j].uid == e.uid && old[j].base == e.base {
			// The session's own record, so that what it cached (sizes,
			// dates) stays and is written down.
			o := old[j]
			if o.size >= 0 && e.size < 0 || o.date > 0 && e.date == 0 {
				richer = true
			}
			if o.size < 0 {
				o.size = e.size
			}
			if o.date == 0 {
				o.date = e.date
			}
			o.sub, o.info = e.sub, e.info
			e = o
		}
		msgs = append(msgs, e)
	}
	// Delivery order: names start with the delivery time.
	fresh := make([]freshName, 0, len(files))
	for base, fi := range files {
		fresh = append(fresh, newFreshName(base, fi))
	}
	slices.SortFunc(fresh, func(a, b freshName) int {
		if a.timed && b.timed && a.time != b.time {
			return cmp.Compare(a.time, b.time)
		}
		return strings.Compare(a.base, b.base)
	})
	for _, fn := range fresh {
		m := &message{uid: list.next, base: fn.base, sub: fn.place[0], info: fn.place[1], size: wireSize(fn.base)}
		list.next++
		msgs = append(msgs, m)
		dirty = true
	}
	if moveNew {
		for _, m := range msgs {
			if m.sub != "new" {
				continue
			}
			to := "cur/" + m.base + ":2," + m.info
			if err := os.Rename(filepath.Join(f.dir, m.file()), filepath.Join(f.dir, to)); err == nil {
				m.sub, m.recent, movedAny = "cur", true, true
			}
		}
	}
	if movedAny {
		// Not needed for safety (the message is in new/ or cur/ after a
		// crash), but then a later session finds it where this one left it.
		syncDir(filepath.Join(f.dir, "cur"))
	}
	post, postOK := f.dirStamps()
	settled := postOK && max(post[0].mtime, post[1].mtime) < start.Add(-time.Second).UnixNano()
	current := !richer && post == list.dirs && settled == list.settled
	if flush && !current {
		dirty = true // record the places, flags, sizes and dates of now
	}
	if dirty {
		// Stamps from after the listing: "settled" says no change can
		// hide behind them.
		list.dirs, list.settled = post, settled
		if lazy {
			msgs, lazy = list.entries.records(), false
		}
		if err := writeUIDList(f.dir, list, msgs); err != nil {
			return false, err
		}
	}
	f.uidValidity, f.uidNext, f.recs, f.lazy = list.validity, list.next, msgs, nil
	if lazy {
		f.lazy = list.entries
	}
	f.saved = dirty || current
	return settled, nil
}

// freshName is a name new to the list, its place in the listing, and the
// delivery time it starts with, parsed once before sorting.
type freshName struct {
	base  string
	place [2]string
	time  int64
	timed bool
}

func newFreshName(base string, place [2]string) freshName {
	fn := freshName{base: base, place: place}
	if len(base) > 10 {
		t, _, _ := strings.Cut(base, ".")
		n, err := strconv.ParseInt(t, 10, 64)
		fn.time, fn.timed = n, err == nil
	}
	return fn
}

// readKeywords reads the folder's keyword letters: lines "N name", letter
// 'a'+N (the format of Dovecot's dovecot-keywords).
func readKeywords(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, keywordsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kw := make([]string, 26)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		i, name, ok := strings.Cut(sc.Text(), " ")
		k, err := strconv.Atoi(i)
		if !ok || err != nil || k < 0 || k >= 26 || name == "" {
			continue
		}
		kw[k] = name
		n = max(n, k+1)
	}
	return kw[:n], sc.Err()
}

func writeKeywords(dir string, kw []string) error {
	var b strings.Builder
	for i, k := range kw {
		if k != "" {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
	}
	return writeFileSync(filepath.Join(dir, keywordsFile), []byte(b.String()))
}

// The Maildir flags (cr.yp.to/proto/maildir.html), in the ASCII order
// their letters must have in a name.
var systemFlags = []struct {
	letter byte
	flag   imap.Flag
}{
	{'D', imap.FlagDraft},
	{'F', imap.FlagFlagged},
	{'R', imap.FlagAnswered},
	{'S', imap.FlagSeen},
	{'T', imap.FlagDeleted},
}

// flags returns m's IMAP flags.
func (f *folder) flags(m *message) []imap.Flag {
	fl := make([]imap.Flag, 0, len(m.info)+1)
	for i := 0; i < len(m.info); i++ {
		c := m.info[i]
		for _, sf := range systemFlags {
			if sf.letter == c {
				fl = append(fl, sf.flag)
			}
		}
		if c >= 'a' && c <= 'z' && int(c-'a') < len(f.keywords) && f.keywords[c-'a'] != "" {
			fl = append(fl, imap.Flag(f.keywords[c-'a']))
		}
	}
	if m.recent {
		fl = append(fl, flagRecent)
	}
	return fl
}

// hasFlag reports whether m's info has flag's letter.
func hasLetter(m *message, letter byte) bool {
	return strings.IndexByte(m.info, letter) >= 0
}

// letters turns flags into the sorted letters of a name, adding keywords
// to the folder's list as needed (added reports that the list changed);
// keywords beyond the 26 letters are dropped.
func (f *folder) letters(flags []imap.Flag) (info string, added bool) {
	set := make(map[byte]bool)
	for _, fl := range flags {
		found := false
		for _, sf := range systemFlags {
			if strings.EqualFold(string(sf.flag), string(fl)) {
				set[sf.letter], found = true, true
			}
		}
		if found || strings.HasPrefix(string(fl), "\\") {
			continue // \Recent and unknown system flags are not stored
		}
		i := slices.IndexFunc(f.keywords, func(k string) bool { return strings.EqualFold(k, string(fl)) })
		if i < 0 {
			i = slices.Index(f.keywords, "")
			if i < 0 && len(f.keywords) < 26 {
				f.keywords = append(f.keywords, "")
				i = len(f.keywords) - 1
			}
			if i < 0 {
				continue
			}
			f.keywords[i], added = string(fl), true
		}
		set['a'+byte(i)] = true
	}
	b := make([]byte, 0, len(set))
	for c := range set {
		b = append(b, c)
	}
	slices.Sort(b)
	return string(b), added
}

// setInfo renames m's file to carry info, under the folder lock held by the
// caller; a file renamed meanwhile by someone else is looked for once.
func (f *folder) setInfo(m *message, info string) error {
	if m.info == info && m.sub == "cur" {
		return nil
	}
	to := "cur/" + m.base + ":2," + info
	err := os.Rename(filepath.Join(f.dir, m.file()), filepath.Join(f.dir, to))
	if errors.Is(err, fs.ErrNotExist) {
		files, lerr := listDir(f.dir)
		if lerr != nil {
			return lerr
		}
		fi, ok := files[m.base]
		if !ok {
			return err // expunged by someone else
		}
		m.sub, m.info = fi[0], fi[1]
		err = os.Rename(filepath.Join(f.dir, m.file()), filepath.Join(f.dir, to))
	}
	if err != nil {
		return err
	}
	m.sub, m.info = "cur", info
	return nil
}

// stat fills in m's internal date (the file's modification time).
func (f *folder) stat(m *message) {
	if m.date > 0 {
		return
	}
	fi, err := os.Stat(filepath.Join(f.dir, m.file()))
	if err == nil {
		m.date, f.saved = fi.ModTime().Unix(), false
	}
}

// flagRecent is IMAP4rev1's \Recent (RFC 3501 §2.3.2), gone from IMAP4rev2.
const flagRecent = imap.Flag(`\Recent`)

// The lock file also remembers the last UIDVALIDITY given, so that a list
// lost and rebuilt within the same second still gets a new one. It is
// written in place: it is the file others hold locked.
func lastValidity(dir string) uint32 {
	data, _ := os.ReadFile(filepath.Join(dir, lockFile))
	v, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32)
	return uint32(v)
}

func noteValidity(dir string, v uint32) error {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%d\n", v)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// wireSize is the size with CRLF line ends that a name may carry as
// ",W=n" (Dovecot's), or -1.
func wireSize(base string) int64 {
	i := strings.Index(base, ",W=")
	if i < 0 {
		return -1
	}
	v := base[i+3:]
	if j := strings.IndexByte(v, ','); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
