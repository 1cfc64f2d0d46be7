package aliases

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const sample = `# sample
postmaster: root
root: alice, bob@remote.org
staff: alice,
    "|/usr/bin/archive staff", /var/mail/staff,
    :include:/etc/lists/staff
owner-staff: \carol
`

func writeAliases(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aliases")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func compile(t *testing.T, path string) {
	t.Helper()
	f, errs, err := ReadFile(path)
	if err != nil || len(errs) > 0 {
		t.Fatalf("ReadFile: %v %v", err, errs)
	}
	if err := f.WriteDB(DBPath(path)); err != nil {
		t.Fatal(err)
	}
}

func lookupAll(t *testing.T, db *DB, names ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, n := range names {
		ts, ok, err := db.Lookup(n)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", n, err)
		}
		if ok {
			got[n] = show(ts)
		}
	}
	return got
}

func TestDBRoundTrip(t *testing.T) {
	path := writeAliases(t, sample)
	compile(t, path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 {
		t.Errorf("directory holds %d files, want aliases and aliases.cdb (no temporary left)", len(entries))
	}
	if fi, err := os.Stat(DBPath(path)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("database: %v %v", fi, err)
	}
	db, warning, err := Open(path)
	if err != nil || warning != nil {
		t.Fatalf("Open: %v, warning %v", err, warning)
	}
	defer db.Close()
	if db.cdb == nil {
		t.Fatal("Open read the text, not the database")
	}
	names := []string{"postmaster", "ROOT", "staff", "owner-staff", "mailer-daemon", "nobody", "\x00format", ""}
	got := lookupAll(t, db, names...)
	want := lookupAll(t, parseDB(t, sample), names...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("database:\n%q\ntext:\n%q", got, want)
	}
	if got["mailer-daemon"] != "local:root@0" || got["staff"] == "" || got["nobody"] != "" || got["\x00format"] != "" {
		t.Errorf("lookups: %q", got)
	}
}

func TestOpenChoosesText(t *testing.T) {
	t.Run("text changed since newaliases", func(t *testing.T) {
		path := writeAliases(t, "a: alice\n")
		compile(t, path)
		os.WriteFile(path, []byte("a: bob\n"), 0o644)
		future := time.Now().Add(time.Second)
		os.Chtimes(path, future, future)
		db, warning, err := Open(path)
		if err != nil || warning == nil || !strings.Contains(warning.Error(), "out of date") {
			t.Fatalf("Open: %v, warning %v", err, warning)
		}
		if got := lookupAll(t, db, "a"); got["a"] != "local:bob@1" {
			t.Errorf("a = %q, want the text's bob", got["a"])
		}
	})
	t.Run("text older but different", func(t *testing.T) {
		path := writeAliases(t, "a: alice\n")
		compile(t, path)
		os.WriteFile(path, []byte("a: bob, carol\n"), 0o644)
		past := time.Now().Add(-time.Hour)
		os.Chtimes(path, past, past)
		if _, warning, _ := Open(path); warning == nil {
			t.Error("a text restored with an old mtime was not noticed")
		}
	})
	t.Run("no database", func(t *testing.T) {
		path := writeAliases(t, "a: alice\nbad line\n")
		db, warning, err := Open(path)
		if err != nil || warning == nil || !strings.Contains(warning.Error(), "does not exist") || !strings.Contains(warning.Error(), ":2: missing colon") {
			t.Fatalf("Open: %v, warning %v", err, warning)
		}
		if got := lookupAll(t, db, "a"); got["a"] != "local:alice@1" {
			t.Errorf("a = %q", got["a"])
		}
	})
	t.Run("corrupt database", func(t *testing.T) {
		path := writeAliases(t, "a: alice\n")
		os.WriteFile(DBPath(path), []byte("not a cdb"), 0o644)
		db, warning, err := Open(path)
		if err != nil || warning == nil || lookupAll(t, db, "a")["a"] == "" {
			t.Fatalf("Open: %v, warning %v", err, warning)
		}
	})
	t.Run("only the database", func(t *testing.T) {
		path := writeAliases(t, "a: alice\n")
		compile(t, path)
		os.Remove(path)
		db, warning, err := Open(path)
		if err != nil || warning != nil || lookupAll(t, db, "a")["a"] != "local:alice@1" {
			t.Fatalf("Open: %v, warning %v", err, warning)
		}
	})
	t.Run("neither", func(t *testing.T) {
		db, warning, err := Open(filepath.Join(t.TempDir(), "aliases"))
		if err != nil || warning != nil {
			t.Fatalf("Open: %v, warning %v", err, warning)
		}
		if got := lookupAll(t, db, "postmaster", "a"); !reflect.DeepEqual(got, map[string]string{"postmaster": "local:root@0"}) {
			t.Errorf("lookups %q", got)
		}
	})
	t.Run("no aliases file configured", func(t *testing.T) {
		db, warning, err := Open("")
		if err != nil || warning != nil || lookupAll(t, db, "postmaster")["postmaster"] == "" {
			t.Fatalf("Open: %v, warning %v", err, warning)
		}
	})
}

func TestUnsafeFiles(t *testing.T) {
	path := writeAliases(t, "a: |/bin/sh -c evil\n")
	os.Chmod(path, 0o664)
	if _, _, err := ReadFile(path); !errors.Is(err, ErrUnsafeFile) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("ReadFile of a group-writable file: %v", err)
	}
	if _, _, err := Open(path); !errors.Is(err, ErrUnsafeFile) {
		t.Errorf("Open of a group-writable file without database: %v", err)
	}
	// A database others can write is not used either.
	os.Chmod(path, 0o644)
	compile(t, path)
	os.Chmod(DBPath(path), 0o666)
	if db, warning, err := Open(path); err != nil || !errors.Is(warning, ErrUnsafeFile) || db.cdb != nil {
		t.Errorf("Open with a world-writable database: %v, warning %v", err, warning)
	}
}

func TestWriteDBFailure(t *testing.T) {
	f, _ := Parse("aliases", strings.NewReader("a: b\n"))
	if err := f.WriteDB(filepath.Join(t.TempDir(), "missing", "aliases.cdb")); err == nil {
		t.Fatal("WriteDB into a missing directory succeeded")
	}
}

// newaliases reports what sendmail reports: aliases, the longest value, and
// the bytes of names and values, continuation lines joined without newlines.
func TestStats(t *testing.T) {
	f, _ := Parse("aliases", strings.NewReader("root: alice\n# c\nstaff: alice,\n  bob\n"))
	n, longest, total := f.Stats()
	// root+alice = 4+5; staff+"alice,  bob" = 5+11.
	if n != 2 || longest != 11 || total != 25 {
		t.Errorf("Stats = %d, %d, %d; want 2, 11, 25", n, longest, total)
	}
}

func TestCheck(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	f, errs := Parse("/etc/aliases", strings.NewReader(
		"staff: alice, ghost,\n  team, \\phantom\nteam: bob@mx.test, nobody@localhost, x@remote.org, postmaster\nlist: :include:"+missing+"\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	u := users("alice", "bob")
	delete(u, "root")
	warns := f.Check(u, []string{"mx.test", "localhost"})
	var got []string
	for _, w := range warns {
		got = append(got, w.Error())
	}
	want := []string{
		`/etc/aliases:1: alias "staff": ghost is neither an alias nor a local user`,
		`/etc/aliases:2: alias "staff": \phantom: no such user`,
		`/etc/aliases:3: alias "team": nobody@localhost is neither an alias nor a local user`,
		`/etc/aliases:4: alias "list": :include:` + missing + `: no such file or directory`,
		`/etc/aliases: postmaster is not in the file and defaults to root, which is neither an alias nor a local user`,
		`/etc/aliases: mailer-daemon is not in the file and defaults to root, which is neither an alias nor a local user`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
