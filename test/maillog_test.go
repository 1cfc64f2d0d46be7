package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// maillog_file is honoured by the programs TestPflogsummCountsADay does not
// run: deliver, pop3d and imapd each append their lines to it, in syslog's
// format and tagged with their own names.
func TestMaillogFileFromEveryProgram(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("bob:{PLAIN}secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	maillog := filepath.Join(dir, "maillog")
	s := newSystem(t, "users_file = "+users, "mail_owner = "+currentUser(t),
		"mail_dir = "+filepath.Join(dir, "mail", "%u"), "maillog_file = "+maillog)

	for _, run := range []struct{ stdin, prog string }{
		{"Subject: x\n\nhi\n", "deliver"},
		{"USER bob\r\nPASS wrong\r\nQUIT\r\n", "pop3d"},
		{"a LOGIN bob wrong\r\nb LOGOUT\r\n", "imapd"},
	} {
		args := []string{"-i"}
		if run.prog == "deliver" {
			args = []string{"bob"}
		}
		if r := s.run(run.stdin, run.prog, args...); r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", run.prog, r.code, r.stderr)
		}
	}

	data, err := os.ReadFile(maillog)
	if err != nil {
		t.Fatal(err)
	}
	stamp := `[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \S+ `
	want := []string{
		`^` + stamp + `yubin/deliver\[\d+\]: event=delivered from=<> to=<bob@mx\.test\.example> mailbox=\S+ size=\d+$`,
		`^` + stamp + `yubin/pop3d\[\d+\]: event=auth proto=pop3 user=bob mech=USER result=fail .*$`,
		`^` + stamp + `yubin/imapd\[\d+\]: event=auth proto=imap user=bob mech=LOGIN result=fail .*$`,
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(want) || !strings.HasSuffix(string(data), "\n") {
		t.Fatalf("log has %d lines, want %d:\n%s", len(lines), len(want), data)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q, want %s", i+1, lines[i], re)
		}
	}
}
