package test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"yubin/internal/aliases"
)

// aliasSystem is a system whose users come from a users_file (root, alice
// and bob), so that which names are users does not depend on the machine.
func aliasSystem(t *testing.T) (*system, string) {
	t.Helper()
	users := filepath.Join(t.TempDir(), "users")
	text := "root:x:0:0:/root\nalice:x:1001:1001:/home/alice\nbob:x:1002:1002:/home/bob\n"
	if err := os.WriteFile(users, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSystem(t, "users_file = "+users)
	return s, filepath.Join(s.dir, "aliases")
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A good file: sendmail's summary line, and a database the runner and smtpd
// read without falling back to the text.
func TestAliasesNewaliasesCompiles(t *testing.T) {
	s, path := aliasSystem(t)
	writeText(t, path, "# test\npostmaster: root\nstaff: alice,\n\tbob, carol@remote.example\nowner-staff: alice\n")
	r := s.run("", "newaliases")
	// postmaster+root 14; staff+"alice,\tbob, carol@remote.example" 5+32;
	// owner-staff+alice 16.
	if want := path + ": 3 aliases, longest 32 bytes, 67 bytes total\n"; r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Fatalf("newaliases: exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	db, warning, err := aliases.Open(path)
	if err != nil || warning != nil {
		t.Fatalf("Open after newaliases: %v, warning %v", err, warning)
	}
	defer db.Close()
	ts, ok, err := db.Lookup("Staff")
	if err != nil || !ok || len(ts) != 3 || ts[2].Value != "carol@remote.example" || ts[2].Line != 4 {
		t.Fatalf("Lookup(staff) = %+v, %v, %v", ts, ok, err)
	}
}

// sendmail -bi is newaliases.
func TestAliasesSendmailBi(t *testing.T) {
	s, path := aliasSystem(t)
	writeText(t, path, "root: alice\n")
	r := s.run("", "sendmail", "-bi")
	if want := path + ": 1 aliases, longest 5 bytes, 9 bytes total\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("sendmail -bi: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(aliases.DBPath(path)); err != nil {
		t.Fatal(err)
	}
}

// Every bad line is reported with its line number, the exit status is
// EX_DATAERR, and the database compiled before stays as it was.
func TestAliasesBadLinesReported(t *testing.T) {
	s, path := aliasSystem(t)
	writeText(t, path, "root: alice\n")
	if r := s.run("", "newaliases"); r.code != 0 {
		t.Fatalf("first newaliases: exit %d %s", r.code, r.stderr)
	}
	before, err := os.ReadFile(aliases.DBPath(path))
	if err != nil {
		t.Fatal(err)
	}
	writeText(t, path, strings.Join([]string{
		"postmaster: root",       // 1
		"staff alice",            // 2: missing colon
		"  bob",                  // 3: part of the entry above
		"list: carol@, bob",      // 4: bad address
		`"unterminated: x`,       // 5: missing colon (it is quoted)
		"ok: alice",              // 6
		"dup: alice",             // 7
		"Dup: bob,",              // 8: given twice
		"\tstray, after, it",     // 9: part of line 8's entry
		"pipe: |",                // 10: empty command
		"inc: :include:relative", // 11: not absolute
	}, "\n")+"\n")
	r := s.run("", "newaliases")
	if r.code != 65 || r.stdout != "" {
		t.Fatalf("newaliases: exit %d, want 65\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	var lines []string
	for _, m := range regexp.MustCompile(`(?m)^newaliases: `+regexp.QuoteMeta(path)+`:(\d+): `).FindAllStringSubmatch(r.stderr, -1) {
		lines = append(lines, m[1])
	}
	if got := strings.Join(lines, " "); got != "2 4 5 8 10 11" {
		t.Errorf("bad lines reported: %s, want 2 4 5 8 10 11\n%s", got, r.stderr)
	}
	if !strings.Contains(r.stderr, "6 bad lines: database not rebuilt") {
		t.Errorf("no summary of the bad lines:\n%s", r.stderr)
	}
	after, err := os.ReadFile(aliases.DBPath(path))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the database changed (%v)", err)
	}
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// A target that is no user is a warning naming the line; the file is
// compiled all the same.
func TestAliasesUnknownUserWarned(t *testing.T) {
	s, path := aliasSystem(t)
	writeText(t, path, "staff: alice,\n  ghost, \\phantom\nteam: bob@mx.test.example, nobody@localhost\n")
	r := s.run("", "newaliases")
	if r.code != 0 || !strings.HasPrefix(r.stdout, path+": 2 aliases,") {
		t.Fatalf("newaliases: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		path + `:2: alias "staff": ghost is neither an alias nor a local user`,
		path + `:2: alias "staff": \phantom: no such user`,
		path + `:3: alias "team": nobody@localhost is neither an alias nor a local user`,
	} {
		if !strings.Contains(r.stderr, "newaliases: warning: "+want+"\n") {
			t.Errorf("no warning %q in:\n%s", want, r.stderr)
		}
	}
	if strings.Count(r.stderr, "\n") != 3 {
		t.Errorf("warnings beyond the three unknown names:\n%s", r.stderr)
	}
	if _, err := os.Stat(aliases.DBPath(path)); err != nil {
		t.Errorf("no database: %v", err)
	}
}

// The sample etc/aliases compiles as shipped, and with its examples
// uncommented.
func TestAliasesSampleCompiles(t *testing.T) {
	sample, err := os.ReadFile("../etc/aliases")
	if err != nil {
		t.Fatal(err)
	}
	s, path := aliasSystem(t)
	writeText(t, path, string(sample))
	r := s.run("", "newaliases")
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, path+": 2 aliases,") {
		t.Fatalf("sample: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// Examples are "#name:" lines and "#<tab>" continuations; prose is "# ".
	examples := regexp.MustCompile(`(?m)^#([^ \n])`).ReplaceAllString(string(sample), "$1")
	writeText(t, path, examples)
	r = s.run("", "newaliases")
	if r.code != 0 || !strings.HasPrefix(r.stdout, path+": 10 aliases,") {
		t.Fatalf("sample with examples: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "newaliases: "+path) {
		t.Errorf("errors in the examples:\n%s", r.stderr)
	}
}

func TestAliasesNewaliasesExitStatus(t *testing.T) {
	s, path := aliasSystem(t)
	if r := s.run("", "newaliases"); r.code != 66 || !strings.Contains(r.stderr, path) {
		t.Errorf("missing aliases file: exit %d %q, want 66", r.code, r.stderr)
	}
	writeText(t, path, "root: alice\n")
	os.Chmod(path, 0o666)
	if r := s.run("", "newaliases"); r.code != 78 || !strings.Contains(r.stderr, "world-writable") {
		t.Errorf("world-writable aliases file: exit %d %q, want 78", r.code, r.stderr)
	}
	if r := s.run("", "newaliases", "-C", filepath.Join(s.dir, "missing.conf")); r.code != 78 {
		t.Errorf("missing configuration: exit %d %q, want 78", r.code, r.stderr)
	}
	if r := s.run("", "newaliases", "extra"); r.code != 64 {
		t.Errorf("an argument: exit %d %q, want 64", r.code, r.stderr)
	}
}
