package imapstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"yubin/internal/maildir"
)

// writeMaildir makes a Maildir with files (sub/name → content).
func writeMaildir(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A Maildir written by other software (Dovecot-style names with flags in
// cur/, a message in new/, no UID list) opens with UIDs in delivery order,
// its flags, and the same UIDs in a later session.
func TestSyncForeignMaildir(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, map[string]string{
		"cur/1600000002.M2P9.host,S=12,W=13:2,RS": "Subject: b\n\n",
		"cur/1600000001.M1P9.host,S=12,W=13:2,":   "Subject: a\n\n",
		"cur/1600000010.M3P9.host:2,FTa":          "Subject: c\r\n\r\n",
		"new/1600000020.M4P9.host":                "Subject: d\n\n",
	})
	writeMaildir(t, filepath.Join(dir, ".Sent"), map[string]string{"cur/1.x:2,S": "S: x\n\n"})
	os.WriteFile(filepath.Join(dir, keywordsFile), []byte("0 $Junk\n"), 0o600)

	f := &folder{dir: dir}
	if err := f.sync(true); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range f.messages() {
		got = append(got, fmt.Sprintf("%d %s %s %v", m.uid, m.base[:10], m.sub, f.flags(m)))
	}
	want := []string{
		"1 1600000001 cur []",
		"2 1600000002 cur [\\Answered \\Seen]",
		"3 1600000010 cur [\\Flagged \\Deleted $Junk]",
		"4 1600000020 cur [\\Recent]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("messages:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, "cur", "1600000020.M4P9.host:2,")); err != nil {
		t.Errorf("new/ not moved to cur/: %v", err)
	}
	list, _ := os.ReadFile(filepath.Join(dir, uidListFile))
	lines := strings.Split(string(list), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "yubin-uidlist 1 ") || strings.Fields(lines[0])[3] != "5" ||
		lines[1] != "1 13 - c, 1600000001.M1P9.host,S=12,W=13" {
		t.Errorf("UID list:\n%s", list)
	}
	if s := f.sizeOf(f.messages()[0]); s != 13 {
		t.Errorf("size from W= is %d, want 13", s)
	}
	if s := f.sizeOf(f.messages()[2]); s != 14 {
		t.Errorf("size counted = %d, want 14", s)
	}

	// A later session: the same UIDs, UIDVALIDITY, and the size learnt.
	f.saveCache()
	g := &folder{dir: dir}
	if err := g.sync(true); err != nil {
		t.Fatal(err)
	}
	if g.uidValidity != f.uidValidity || g.uidNext != 5 || len(g.messages()) != 4 || g.messages()[3].recent || g.messages()[2].size != 14 {
		t.Errorf("second session: validity %d/%d next %d msgs %d size %d", g.uidValidity, f.uidValidity, g.uidNext, len(g.messages()), g.messages()[2].size)
	}
	for i, m := range g.messages() {
		if m.uid != f.messages()[i].uid || m.base != f.messages()[i].base {
			t.Errorf("message %d: UID %d %s, was %d %s", i, m.uid, m.base, f.messages()[i].uid, f.messages()[i].base)
		}
	}

	// Expunged by someone else: the UID is not given again.
	os.Remove(filepath.Join(dir, "cur", "1600000020.M4P9.host:2,"))
	os.WriteFile(filepath.Join(dir, "new", "1600000030.M5P9.host"), []byte("S: e\n\n"), 0o600)
	if err := g.sync(false); err != nil {
		t.Fatal(err)
	}
	if n := len(g.messages()); n != 4 || g.messages()[3].uid != 5 || g.messages()[3].sub != "new" || g.uidNext != 6 {
		t.Errorf("after an expunge and a delivery: %d messages, last UID %d in %s, next %d", n, g.messages()[n-1].uid, g.messages()[n-1].sub, g.uidNext)
	}
}

func TestLettersAndKeywords(t *testing.T) {
	f := &folder{dir: t.TempDir(), keywords: []string{"$Junk"}}
	for _, tc := range []struct {
		name  string
		flags []imap.Flag
		want  string
		added bool
	}{
		{"system flags sorted", []imap.Flag{imap.FlagSeen, imap.FlagDraft, imap.FlagAnswered}, "DRS", false},
		{"case-insensitive", []imap.Flag{"\\seen", "$junk"}, "Sa", false},
		{"new keyword", []imap.Flag{"Work"}, "b", true},
		{"recent is not stored", []imap.Flag{flagRecent, imap.FlagDeleted}, "T", false},
	} {
		got, added := f.letters(tc.flags)
		if got != tc.want || added != tc.added {
			t.Errorf("%s: letters = %q, %v; want %q, %v", tc.name, got, added, tc.want, tc.added)
		}
	}
	if !slices.Equal(f.keywords, []string{"$Junk", "Work"}) {
		t.Errorf("keywords = %v", f.keywords)
	}
}

// A damaged UID list is rebuilt with a new UIDVALIDITY.
func TestDamagedUIDList(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, map[string]string{"cur/1.a:2,": "S: a\n\n"})
	f := &folder{dir: dir}
	f.sync(true)
	v := f.uidValidity
	os.WriteFile(filepath.Join(dir, uidListFile), []byte("yubin-uidlist 1 x"), 0o600)
	g := &folder{dir: dir}
	if err := g.sync(true); err != nil {
		t.Fatal(err)
	}
	if g.uidValidity <= v || len(g.messages()) != 1 || g.messages()[0].uid != 1 {
		t.Errorf("rebuilt: validity %d (was %d), %d messages", g.uidValidity, v, len(g.messages()))
	}
}

// deliver writes into the folder while sessions (each its own folder
// value, as each is its own process) rescan it, move new/ to cur/ and
// change flags: no message ever has two UIDs, no UID two messages, and
// every delivery gets one.
func TestConcurrentDeliveryKeepsUIDs(t *testing.T) {
	dir := t.TempDir()
	md := maildir.Dir(dir)
	if err := md.Init(); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for i := range n {
			msg := []byte(fmt.Sprintf("Subject: %d\n\nx\n", i))
			if _, err := md.Deliver(bytes.NewReader(msg), int64(len(msg))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var mu sync.Mutex
	uidOf := map[string]imap.UID{}
	baseOf := map[imap.UID]string{}
	check := func(f *folder) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range f.messages() {
			if u, ok := uidOf[m.base]; ok && u != m.uid {
				t.Errorf("%s had UID %d, now %d", m.base, u, m.uid)
			}
			if b, ok := baseOf[m.uid]; ok && b != m.base {
				t.Errorf("UID %d was %s, now %s", m.uid, b, m.base)
			}
			uidOf[m.base], baseOf[m.uid] = m.uid, m.base
		}
	}
	done := make(chan struct{})
	for s := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &folder{dir: dir}
			for {
				if err := f.sync(s == 0); err != nil {
					t.Error(err)
					return
				}
				check(f)
				if s == 1 && len(f.messages()) > 0 {
					// Flag changes: renames in cur/.
					unlock, _ := f.lock()
					m := f.messages()[len(f.messages())/2]
					if m.sub == "cur" {
						info, _ := f.letters(append(f.flags(m), imap.FlagSeen))
						f.setInfo(m, info)
					}
					unlock()
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	<-delivered
	close(done)
	wg.Wait()
	f := &folder{dir: dir}
	f.sync(false)
	check(f)
	if len(f.messages()) != n || f.uidNext != n+1 {
		t.Errorf("%d messages, UIDNEXT %d; want %d, %d", len(f.messages()), f.uidNext, n, n+1)
	}
}

// The UID list is read from the user's directory: anything in it either
// reads as a list whose UIDs rise below UIDNEXT, or as no list at all.
func FuzzReadUIDList(f *testing.F) {
	f.Add("yubin-uidlist 1 1700000000 3 1:2:3 4:5:6 1\n1 10 - c,S a\n2 - 1700000000 n b,S=3\n")
	f.Add("yubin-uidlist 1 5 2 0:0:0 0:0:0 0\n1 - - c, x\n1 - - c, y\n")
	f.Add("yubin-uidlist 1 x")
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, uidListFile), []byte(data), 0o600)
		l, err := readUIDList(dir)
		if err != nil || l == nil {
			return
		}
		// What the check found (SELECT's answer) is what the records say.
		es := l.entries
		count, firstUnseen, inNew := es.count, es.firstUnseen, es.inNew
		var last imap.UID
		names := map[string]bool{}
		unseen, anyNew := 0, false
		for i, e := range es.records() {
			if e.uid <= last || e.uid >= l.next || names[e.base] {
				t.Fatalf("bad entry %+v after UID %d (next %d)", e, last, l.next)
			}
			last, names[e.base] = e.uid, true
			if unseen == 0 && !hasLetter(e, 'S') {
				unseen = i + 1
			}
			anyNew = anyNew || e.sub == "new"
			if es.infos[i] != e.info {
				t.Fatalf("entry %d: flags %q, told %q", i, e.info, es.infos[i])
			}
		}
		if len(es.records()) != count || unseen != firstUnseen || anyNew != inNew {
			t.Fatalf("checked %d, unseen %d, new %v; parsed %d, %d, %v", count, firstUnseen, inNew, len(es.records()), unseen, anyNew)
		}
	})
}

// A list written when new/ and cur/ had settled stands for the directory
// while they are unchanged (no listing), and not once they change.
func TestSettledListStandsForTheDirectory(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, map[string]string{"cur/1.a:2,S": "S: a\n\n", "cur/2.b:2,": "S: b\n\n"})
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		os.Chtimes(filepath.Join(dir, sub), old, old)
	}
	f := &folder{dir: dir}
	if err := f.sync(true); err != nil {
		t.Fatal(err)
	}
	list, _ := readUIDList(dir)
	if !list.settled || !f.trusted {
		t.Fatalf("settled %v, trusted %v", list.settled, f.trusted)
	}
	g := &folder{dir: dir}
	if err := g.sync(true); err != nil {
		t.Fatal(err)
	}
	if len(g.messages()) != 2 || g.messages()[0].info != "S" || g.messages()[1].uid != 2 {
		t.Errorf("from the list: %+v %+v", g.messages()[0], g.messages()[1])
	}
	// A delivery and a flag change by others.
	os.WriteFile(filepath.Join(dir, "new", "3.c"), []byte("S: c\n\n"), 0o600)
	os.Rename(filepath.Join(dir, "cur", "2.b:2,"), filepath.Join(dir, "cur", "2.b:2,F"))
	h := &folder{dir: dir}
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	if len(h.messages()) != 3 || h.messages()[1].info != "F" || h.messages()[2].sub != "new" || h.messages()[2].uid != 3 {
		t.Errorf("after changes: %d messages, %+v %+v", len(h.messages()), h.messages()[1], h.messages()[len(h.messages())-1])
	}
}

// The sizes a session learnt are written down at its end; a session that
// learnt nothing and found the folder unchanged leaves the list alone.
func TestSaveCacheWritesOnlyWhatIsNew(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, map[string]string{"cur/1.a:2,S": "S: a\n\nbody\n", "cur/2.b:2,": "S: b\n\n"})
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		os.Chtimes(filepath.Join(dir, sub), old, old)
	}
	inode := func() uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, uidListFile), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	f := &folder{dir: dir}
	if err := f.sync(true); err != nil {
		t.Fatal(err)
	}
	if f.messages()[0].size != -1 {
		t.Fatalf("size %d before reading", f.messages()[0].size)
	}
	if _, err := f.readFile(f.messages()[0]); err != nil {
		t.Fatal(err)
	}
	before := inode()
	if err := f.saveCache(); err != nil {
		t.Fatal(err)
	}
	if inode() == before {
		t.Fatal("a learnt size was not written down")
	}
	list, _ := readUIDList(dir)
	if list.entries.records()[0].size != int64(len("S: a\r\n\r\nbody\r\n")) || list.entries.records()[1].size != -1 {
		t.Errorf("sizes in the list: %d, %d", list.entries.records()[0].size, list.entries.records()[1].size)
	}
	g := &folder{dir: dir}
	if err := g.sync(true); err != nil {
		t.Fatal(err)
	}
	before = inode()
	if err := g.saveCache(); err != nil {
		t.Fatal(err)
	}
	if inode() != before {
		t.Error("the list was rewritten though nothing was learnt")
	}
}

// readUIDList takes a list whose UIDs rise below UIDNEXT and whose names
// are unique, in whatever order the names come, and nothing else.
func TestReadUIDListChecks(t *testing.T) {
	const head = "yubin-uidlist 1 7 9 1:2:3 4:5:6 1\n"
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"names rising", "1 - - c, a\n2 5 60 c,S b\n3 - - n c\n", true},
		{"names in any order", "1 - - c, c\n2 - - c, a\n5 - - n b\n", true},
		{"name twice, unordered", "1 - - c, b\n2 - - c, a\n3 - - c, b\n", false},
		{"name twice, adjacent", "1 - - c, a\n2 - - c, a\n", false},
		{"UID not rising", "2 - - c, a\n2 - - c, b\n", false},
		{"UID at UIDNEXT", "1 - - c, a\n9 - - c, b\n", false},
		{"UID zero", "0 - - c, a\n", false},
		{"bad place", "1 - - x a\n", false},
		{"no name", "1 - - c, \n", false},
		{"short line", "1 - -\n", false},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, uidListFile), []byte(head+tc.body), 0o600)
		l, err := readUIDList(dir)
		if err != nil || (l != nil) != tc.ok {
			t.Errorf("%s: list %v, err %v; want ok %v", tc.name, l != nil, err, tc.ok)
		}
	}
}
