package imapstore

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"yubin/internal/maildir"
)

// settledInbox makes alice's INBOX with five messages in cur/ (UIDs 1-5:
// seen, seen, unseen, flagged, deleted), settled, with its UID list
// written, so that the next SELECT takes the lazy path; it returns the
// options and the Maildir.
func settledInbox(t *testing.T) (Options, string) {
	t.Helper()
	opts := testOptions(t)
	md := filepath.Join(opts.Users.(users).home, "Maildir")
	writeMaildir(t, md, map[string]string{
		"cur/1000000001.a:2,S": "Subject: one\n\nbody\n",
		"cur/1000000002.b:2,S": "Subject: two\n\nbody\n",
		"cur/1000000003.c:2,":  "Subject: three\n\nbody\n",
		"cur/1000000004.d:2,F": "Subject: four\n\nbody\n",
		"cur/1000000005.e:2,T": "Subject: five\n\nbody\n",
	})
	settle(t, md)
	if err := (&folder{dir: md}).sync(true); err != nil {
		t.Fatal(err)
	}
	f := &folder{dir: md}
	if err := f.sync(true); err != nil {
		t.Fatal(err)
	}
	if f.lazy == nil {
		t.Fatal("a settled, unchanged folder was parsed at SELECT")
	}
	return opts, md
}

// settle makes new/ and cur/ an hour old.
func settle(t *testing.T, md string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(md, sub), old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// session logs alice in and returns a function sending one command and
// returning its answer.
func session(t *testing.T, opts Options) func(cmd string) string {
	t.Helper()
	c, r := serveOne(t, opts, func(c net.Conn) net.Conn { return c })
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	n := 0
	do := func(cmd string) string {
		n++
		return exchange(t, c, r, fmt.Sprintf("t%d", n), cmd)
	}
	if got := do("LOGIN alice secret"); !strings.Contains(got, " OK") {
		t.Fatalf("LOGIN = %q", got)
	}
	return do
}

func wantAll(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s = %q, want %q in it", what, got, w)
		}
	}
}

// A SELECT answered from the UID list's lines alone gives the counts of
// the eager path, and the first FETCH, SEARCH, STORE or EXPUNGE after it
// sees the messages the list holds.
func TestLazySelectThenFirstCommand(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		want []string
		then func(t *testing.T, md string, do func(string) string)
	}{
		{"FETCH 1:* (UID FLAGS)", []string{
			`* 1 FETCH (UID 1 FLAGS (\Seen))`, `* 3 FETCH (UID 3 FLAGS ())`,
			`* 4 FETCH (UID 4 FLAGS (\Flagged))`, `* 5 FETCH (UID 5 FLAGS (\Deleted))`,
		}, nil},
		{"UID FETCH 4 (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])", []string{
			`* 4 FETCH (UID 4 RFC822.SIZE 23 BODY[HEADER.FIELDS ("SUBJECT")] {17}`, "Subject: four\r\n\r\n)",
		}, nil},
		{"UID SEARCH UNSEEN", []string{"* SEARCH 3 4 5\r\n"}, nil},
		{"SEARCH SUBJECT four", []string{"* SEARCH 4\r\n"}, nil},
		{"STORE 2 +FLAGS (\\Flagged)", []string{`* 2 FETCH (UID 2 FLAGS (\Flagged \Seen))`},
			func(t *testing.T, md string, do func(string) string) {
				if _, err := os.Stat(filepath.Join(md, "cur", "1000000002.b:2,FS")); err != nil {
					t.Error(err)
				}
				wantAll(t, "FETCH after STORE", do("FETCH 2 FLAGS"), `* 2 FETCH (FLAGS (\Flagged \Seen))`)
			}},
		{"EXPUNGE", []string{"* 5 EXPUNGE\r\n"},
			func(t *testing.T, md string, do func(string) string) {
				if _, err := os.Stat(filepath.Join(md, "cur", "1000000005.e:2,T")); !os.IsNotExist(err) {
					t.Errorf("expunged message: %v", err)
				}
				got := do("FETCH 1:* UID")
				if strings.Count(got, " FETCH (") != 4 || strings.Contains(got, "UID 5") {
					t.Errorf("FETCH after EXPUNGE = %q", got)
				}
			}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			opts, md := settledInbox(t)
			do := session(t, opts)
			wantAll(t, "SELECT", do("SELECT INBOX"), "* 5 EXISTS", "* 0 RECENT", "[UNSEEN 3]", "[UIDNEXT 6]")
			wantAll(t, tc.cmd, do(tc.cmd), tc.want...)
			if tc.then != nil {
				tc.then(t, md, do)
			}
			do("LOGOUT")
		})
	}
}

// What another session and a delivery change between a lazy SELECT and the
// first command is reported as for an eager one: flags at once, EXPUNGE
// when allowed (not after FETCH), new messages as EXISTS.
func TestLazySelectSeesChangesBeforeFirstCommand(t *testing.T) {
	for _, first := range []string{"NOOP", "FETCH 1 UID"} {
		t.Run(first, func(t *testing.T) {
			opts, md := settledInbox(t)
			do := session(t, opts)
			wantAll(t, "SELECT", do("SELECT INBOX"), "* 5 EXISTS", "[UNSEEN 3]")

			other := session(t, opts)
			wantAll(t, "other SELECT", other("SELECT INBOX"), "* 5 EXISTS")
			other("STORE 1 +FLAGS (\\Flagged)")
			other("STORE 3 +FLAGS (\\Deleted)")
			wantAll(t, "other EXPUNGE", other("EXPUNGE"), "* 5 EXPUNGE", "* 3 EXPUNGE")
			other("LOGOUT")
			if _, err := maildir.Dir(md).Deliver(strings.NewReader("Subject: six\n\nbody\n"), 19); err != nil {
				t.Fatal(err)
			}

			got := do(first)
			wantAll(t, first, got, `* 1 FETCH (UID 1 FLAGS (\Flagged \Seen))`)
			if first == "NOOP" {
				// 3 and 5 gone, 6 new: four messages.
				wantAll(t, first, got, "* 5 EXPUNGE", "* 3 EXPUNGE", "* 4 EXISTS")
			} else {
				if strings.Contains(got, "EXPUNGE") {
					t.Errorf("EXPUNGE after FETCH: %q", got)
				}
				wantAll(t, first, got, "* 6 EXISTS")
				wantAll(t, "NOOP", do("NOOP"), "* 5 EXPUNGE", "* 3 EXPUNGE")
			}
			got = do("FETCH 1:* (UID FLAGS)")
			wantAll(t, "FETCH", got, `* 1 FETCH (UID 1 FLAGS (\Flagged \Seen))`, `* 2 FETCH (UID 2 FLAGS (\Seen))`,
				`* 3 FETCH (UID 4 FLAGS (\Flagged))`, `* 4 FETCH (UID 6 FLAGS (\Recent))`)
			if n := strings.Count(got, " FETCH ("); n != 4 {
				t.Errorf("FETCH 1:* = %d messages: %q", n, got)
			}
			wantAll(t, "UID SEARCH", do("UID SEARCH ALL"), "* SEARCH 1 2 4 6\r\n")
			do("LOGOUT")
		})
	}
}

// A settled list whose messages are in new/ is parsed at SELECT, which
// moves them, and left for later by EXAMINE and STATUS, which do not.
func TestLazyOnlyWithNothingToMove(t *testing.T) {
	dir := t.TempDir()
	writeMaildir(t, dir, map[string]string{"cur/1.a:2,S": "S: a\n\n", "new/2.b": "S: b\n\n"})
	settle(t, dir)
	if err := (&folder{dir: dir}).sync(false); err != nil {
		t.Fatal(err)
	}
	f := &folder{dir: dir}
	if err := f.sync(false); err != nil {
		t.Fatal(err)
	}
	if f.lazy == nil || f.lazy.count != 2 || f.lazy.firstUnseen != 2 || !f.lazy.inNew {
		t.Fatalf("EXAMINE: lazy %+v", f.lazy)
	}
	g := &folder{dir: dir}
	if err := g.sync(true); err != nil {
		t.Fatal(err)
	}
	if g.lazy != nil {
		t.Fatal("SELECT left messages in new/")
	}
	if msgs := g.messages(); len(msgs) != 2 || msgs[1].sub != "cur" || !msgs[1].recent {
		t.Errorf("after SELECT: %+v", msgs)
	}
}
