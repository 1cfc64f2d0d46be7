package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startIMAPd runs the standalone imapd on 127.0.0.1 ports until the test
// ends and returns its port (and the implicit-TLS port when tlsPort).
func (s *pop3System) startIMAPd(tlsPort bool) (port, tport int) {
	s.t.Helper()
	port, tport, _ = s.startServer("imapd", "imap", tlsPort)
	return port, tport
}

// imaplib runs a Python script with imaplib imported, `port`, `argv` and a
// helper `s(x)` (bytes → str, recursively) defined, and returns what it
// put in `out`, as JSON.
func (s *pop3System) imaplib(script string, port int, args ...string) map[string]any {
	s.t.Helper()
	prelude := `import imaplib, time, re
def s(x):
    if isinstance(x, bytes): return x.decode("latin-1")
    if isinstance(x, (list, tuple)): return [s(y) for y in x]
    return x
def raw(M, cmd):
    tag = M._new_tag(); M.send(tag + b" " + cmd.encode() + b"\r\n"); lines = []
    while True:
        l = M.readline().decode("latin-1"); lines.append(l.strip())
        if l.startswith(tag.decode()): return lines
`
	return s.python(prelude, script, port, args...)
}

// ls lists a Maildir subdirectory.
func lsDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func str(v any) string { return fmt.Sprint(v) }

// The commands of a mail client's day through imaplib: LIST with the
// special-use folders, SELECT, FETCH byte-exact, STORE into file names,
// SEARCH, APPEND/COPY/MOVE with UIDPLUS, EXPUNGE, folder management, and a
// bad command answered BAD with the session going on.
func TestIMAPEveryCommandWithImaplib(t *testing.T) {
	s := newPOP3System(t)
	one := "From: Ann <ann@example.org>\nTo: bob@example.org\nSubject: one\nDate: Mon, 02 Jan 2006 15:04:05 +0000\n\nfirst body\n"
	two := "From: carl@example.org\r\nSubject: two apples\r\n\r\nsecond body, longer than the first one\r\n"
	three := "Subject: three\n\nthird\n"
	dir := s.mailbox("bob", map[string]string{
		"cur/1000000001.M1P1.h,S=90:2,S": one,
		"cur/1000000002.M1P1.h:2,":       two,
		"new/1000000003.M1P1.h":          three,
	})
	port, _ := s.startIMAPd(false)
	appended := "From: me@example.org\r\nSubject: appended\r\n\r\nbytes \x01 kept\r\nas sent\r\n"
	out := s.imaplib(`
M = imaplib.IMAP4("127.0.0.1", port)
out["caps"] = list(M.capabilities)
out["login"] = s(M.login("bob", "correct horse"))
out["list"] = s(M.list()[1])
typ, data = M.select("INBOX")
out["select"] = [typ, s(data)]
out["uidvalidity"] = s(M.response("UIDVALIDITY")[1])
out["fetch_flags"] = s(M.fetch("1:*", "(UID FLAGS RFC822.SIZE)")[1])
out["body1"] = s(M.fetch("1", "(BODY.PEEK[])")[1][0][1])
out["body2"] = s(M.fetch("2", "(BODY.PEEK[])")[1][0][1])
out["partial"] = s(M.fetch("2", "(BODY.PEEK[]<0.10>)")[1][0][1])
out["hdr"] = s(M.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1])
out["env"] = s(M.fetch("1", "(ENVELOPE BODYSTRUCTURE INTERNALDATE)")[1])
out["store"] = s(M.store("1", "+FLAGS", "(\\Flagged $Label1)")[1])
out["search_subject"] = s(M.search(None, "SUBJECT", "apples")[1])
out["search_unseen"] = s(M.search(None, "UNSEEN")[1])
out["search_larger"] = s(M.search(None, "LARGER", "80")[1])
out["search_body"] = s(M.search(None, "BODY", "third")[1])
out["search_keyword"] = s(M.search(None, "KEYWORD", "$Label1")[1])
out["uid_search"] = s(M.uid("SEARCH", "SEEN")[1])
tag = M._new_tag()
M.send(tag + b" FROBNICATE now\r\n")
out["bad"] = s(M.readline())
out["noop"] = s(M.noop())
typ, data = M.append("INBOX", "(\\Seen \\Draft)", '"01-Feb-2020 10:00:00 +0000"', argv[0].encode("latin-1"))
out["append"] = [typ, s(data)]
out["fetch_appended"] = s(M.fetch("4", "(FLAGS INTERNALDATE BODY.PEEK[])")[1][0])
out["copy"] = s(M.copy("1:2", "Archive"))
out["move"] = s(M._simple_command("UID", "MOVE", "3", "Trash"))
out["move_untagged"] = s(M.untagged_responses.get("COPYUID", []))
M.untagged_responses.pop("EXPUNGE", None)
out["after_move"] = s(M.fetch("1:*", "(UID)")[1])
M.store("1", "+FLAGS", "\\Deleted")
out["expunge"] = s(M.expunge()[1])
out["after_expunge"] = s(M.fetch("1:*", "(UID)")[1])
out["body_seen"] = s(M.fetch("1", "(BODY[TEXT])")[1])
out["flags_after_seen"] = s(M.fetch("1", "(FLAGS)")[1])
M.store("1:2", "+FLAGS", "\\Deleted")
out["uid_expunge"] = raw(M, "UID EXPUNGE 4")
out["after_uid_expunge"] = s(M.fetch("1:*", "(UID)")[1])
out["status"] = s(M.status("Archive", "(MESSAGES UIDNEXT UNSEEN)")[1])
out["create"] = s(M.create("Work.Projects"))
out["list_parent"] = s(M.list("\"\"", "Work*")[1])
out["rename"] = s(M.rename("Work", "Jobs"))
out["subscribe"] = s(M.subscribe("Jobs.Projects"))
out["lsub"] = s(M.lsub()[1])
out["create_again"] = s(M.create("Jobs.Projects"))
out["delete"] = s(M.delete("Jobs.Projects"))
out["select_missing"] = s(M.select("Nonexistent"))
out["namespace"] = s(M.namespace()[1])
M.select("Archive", readonly=True)
out["archive"] = s(M.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1])
M.select("Trash")
out["trash"] = s(M.fetch("1", "(BODY.PEEK[])")[1][0][1])
out["logout"] = s(M.logout())
`, port, appended)
	for _, c := range []string{"IMAP4REV1", "AUTH=PLAIN"} {
		if !slices.Contains(strings.Fields(str(out["caps"])), c) && !strings.Contains(str(out["caps"]), c) {
			t.Errorf("capabilities %v lack %s", out["caps"], c)
		}
	}
	list := str(out["list"])
	for _, want := range []string{`"." INBOX`, `(\Sent \HasNoChildren) "." "Sent"`, `\Trash`, `\Junk`, `\Drafts`, `\Archive`} {
		if !strings.Contains(list, want) {
			t.Errorf("LIST %s lacks %s", list, want)
		}
	}
	if str(out["select"]) != "[OK [3]]" {
		t.Errorf("SELECT = %v", out["select"])
	}
	ff := str(out["fetch_flags"])
	for _, want := range []string{
		fmt.Sprintf("1 (UID 1 FLAGS (\\Seen) RFC822.SIZE %d)", len(one)+strings.Count(one, "\n")),
		fmt.Sprintf("2 (UID 2 FLAGS () RFC822.SIZE %d)", len(two)),
		fmt.Sprintf("3 (UID 3 FLAGS (\\Recent) RFC822.SIZE %d)", len(three)+strings.Count(three, "\n")),
	} {
		if !strings.Contains(ff, want) {
			t.Errorf("FETCH FLAGS RFC822.SIZE = %s, want %s", ff, want)
		}
	}
	if out["body1"] != strings.ReplaceAll(one, "\n", "\r\n") || out["body2"] != two {
		t.Errorf("BODY[] not byte-exact: %q %q", out["body1"], out["body2"])
	}
	if out["partial"] != two[:10] || out["hdr"] != "Subject: one\r\n\r\n" {
		t.Errorf("partial %q, header fields %q", out["partial"], out["hdr"])
	}
	if env := str(out["env"]); !strings.Contains(env, `"one"`) || !strings.Contains(env, `"Ann"`) || !strings.Contains(env, `"text" "plain"`) {
		t.Errorf("ENVELOPE BODYSTRUCTURE = %s", env)
	}
	if !strings.Contains(str(out["store"]), `\Flagged`) || !strings.Contains(str(out["store"]), "$Label1") {
		t.Errorf("STORE = %v", out["store"])
	}
	for k, want := range map[string]string{"search_subject": "[2]", "search_unseen": "[2 3]", "search_larger": "[1 2]",
		"search_body": "[3]", "search_keyword": "[1]", "uid_search": "[1]"} {
		if str(out[k]) != want {
			t.Errorf("%s = %v, want %s", k, out[k], want)
		}
	}
	if !strings.Contains(str(out["bad"]), " BAD ") || str(out["noop"]) != "[OK [NOOP completed]]" {
		t.Errorf("bad command: %v, then NOOP %v", out["bad"], out["noop"])
	}
	if !strings.Contains(str(out["append"]), "APPENDUID") || !strings.Contains(str(out["append"]), " 4]") {
		t.Errorf("APPEND = %v", out["append"])
	}
	fa := str(out["fetch_appended"])
	if !strings.Contains(fa, `\Seen`) || !strings.Contains(fa, `\Draft`) || !strings.Contains(fa, " 1-Feb-2020 10:00:00 +0000") || !strings.HasSuffix(fa, appended+"]") {
		t.Errorf("FETCH of the appended message = %q", fa)
	}
	if !strings.Contains(str(out["copy"]), "COPYUID") || !strings.Contains(str(out["copy"]), "1:2 1:2") {
		t.Errorf("COPY = %v", out["copy"])
	}
	if !strings.Contains(str(out["move_untagged"]), " 3 1") || str(out["after_move"]) != "[1 (UID 1) 2 (UID 2) 3 (UID 4)]" {
		t.Errorf("MOVE: %v %v, then %v", out["move"], out["move_untagged"], out["after_move"])
	}
	if str(out["expunge"]) != "[1]" || str(out["after_expunge"]) != "[1 (UID 2) 2 (UID 4)]" {
		t.Errorf("EXPUNGE = %v, then %v", out["expunge"], out["after_expunge"])
	}
	if ue := str(out["uid_expunge"]); !strings.Contains(ue, "* 2 EXPUNGE") || strings.Contains(ue, "* 1 EXPUNGE") ||
		str(out["after_uid_expunge"]) != "[1 (UID 2)]" {
		t.Errorf("UID EXPUNGE 4 = %v, then %v", out["uid_expunge"], out["after_uid_expunge"])
	}
	if !strings.Contains(str(out["flags_after_seen"]), `\Seen`) {
		t.Errorf("BODY[TEXT] did not set \\Seen: %v", out["flags_after_seen"])
	}
	if !strings.Contains(str(out["status"]), "MESSAGES 2 UIDNEXT 3 UNSEEN 1") {
		t.Errorf("STATUS = %v", out["status"])
	}
	if !strings.Contains(str(out["lsub"]), "Jobs.Projects") || !strings.Contains(str(out["create_again"]), "ALREADYEXISTS") || !strings.HasPrefix(str(out["rename"]), "[OK") ||
		!strings.HasPrefix(str(out["delete"]), "[OK") || !strings.HasPrefix(str(out["select_missing"]), "[NO") {
		t.Errorf("folders: lsub %v, create again %v, delete %v, select missing %v", out["lsub"], out["create_again"], out["delete"], out["select_missing"])
	}
	if lp := str(out["list_parent"]); !strings.Contains(lp, `(\Noselect \HasChildren) "." "Work"`) || !strings.Contains(lp, `"Work.Projects"`) {
		t.Errorf("LIST Work* = %s", lp)
	}
	if !strings.Contains(str(out["namespace"]), `(("" "."))`) {
		t.Errorf("NAMESPACE = %v", out["namespace"])
	}
	if a := str(out["archive"]); !strings.Contains(a, "Subject: one") || !strings.Contains(a, "Subject: two") {
		t.Errorf("Archive after COPY = %v", a)
	}
	if out["trash"] != strings.ReplaceAll(three, "\n", "\r\n") {
		t.Errorf("MOVE did not keep the bytes: %q", out["trash"])
	}
	// On disk: flags in the names, keyword letters, the folders.
	cur := strings.Join(lsDir(t, filepath.Join(dir, "cur")), " ")
	if strings.Contains(cur, "1000000001") || !strings.Contains(cur, "1000000002.M1P1.h:2,S") {
		t.Errorf("INBOX cur/ = %s", cur)
	}
	if names := strings.Join(lsDir(t, filepath.Join(dir, ".Archive", "cur")), " "); !strings.Contains(names, ":2,FSa") {
		t.Errorf("Archive cur/ = %s, want the copy with F, S and keyword a", names)
	}
	if kw, _ := os.ReadFile(filepath.Join(dir, ".Archive", "yubin-keywords")); string(kw) != "0 $Label1\n" {
		t.Errorf("Archive keywords = %q", kw)
	}
	if names := lsDir(t, filepath.Join(dir, ".Trash", "cur")); len(names) != 1 || !strings.HasPrefix(names[0], "1000000003") && !strings.Contains(names[0], ":2,") {
		t.Errorf("Trash cur/ = %v", names)
	}
	for _, gone := range []string{".Work.Projects", ".Jobs.Projects"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("%s is still there after RENAME and DELETE", gone)
		}
	}
}

// UIDs and UIDVALIDITY stay across sessions and after a delivery in
// between; the new message gets the next UID.
func TestIMAPUIDsStableAcrossSessions(t *testing.T) {
	s := newPOP3System(t)
	dir := s.mailbox("alice", map[string]string{
		"new/1000000001.M1P1.h":     "Subject: a\n\n1\n",
		"new/1000000002.M1P1.h":     "Subject: b\n\n2\n",
		"cur/1000000003.M1P1.h:2,F": "Subject: c\n\n3\n",
	})
	port, _ := s.startIMAPd(false)
	script := `
M = imaplib.IMAP4("127.0.0.1", port)
M.login("alice", "tanstaaf")
M.select("INBOX")
out["validity"] = s(M.response("UIDVALIDITY")[1])
out["uids"] = " ".join(re.search(rb"UID (\d+)", r[0]).group(1).decode() + "=" + r[1].decode().strip()
    for r in M.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1] if isinstance(r, tuple))
M.logout()
`
	first := s.imaplib(script, port)
	// Another program delivers (deliver's names sort after).
	if err := os.WriteFile(filepath.Join(dir, "new", "1000000009.M1P1.h"), []byte("Subject: d\n\n4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	second := s.imaplib(script, port)
	if str(first["validity"]) != str(second["validity"]) {
		t.Errorf("UIDVALIDITY changed: %v then %v", first["validity"], second["validity"])
	}
	if got := str(first["uids"]); got != "1=Subject: a 2=Subject: b 3=Subject: c" {
		t.Errorf("first session: %q", got)
	}
	if got := str(second["uids"]); got != "1=Subject: a 2=Subject: b 3=Subject: c 4=Subject: d" {
		t.Errorf("second session: %q", got)
	}
	// The UID list is rebuilt from the directory when lost, with a new
	// UIDVALIDITY.
	os.Remove(filepath.Join(dir, "yubin-uidlist"))
	third := s.imaplib(script, port)
	if str(third["validity"]) == str(first["validity"]) {
		t.Errorf("UIDVALIDITY %v kept after the UID list was lost", third["validity"])
	}
}

// Two sessions on one folder: each sees the other's STORE, EXPUNGE and
// APPEND on NOOP, and IDLE reports a delivery by deliver(8).
func TestIMAPConcurrentSessionsSeeChanges(t *testing.T) {
	s := newPOP3System(t)
	dir := s.mailbox("alice", map[string]string{
		"cur/1000000001.M1P1.h:2,": "Subject: a\n\n1\n",
		"cur/1000000002.M1P1.h:2,": "Subject: b\n\n2\n",
	})
	port, _ := s.startIMAPd(false)
	out := s.imaplib(`
A = imaplib.IMAP4("127.0.0.1", port); A.login("alice", "tanstaaf"); A.select("INBOX")
B = imaplib.IMAP4("127.0.0.1", port); B.login("alice", "tanstaaf"); B.select("INBOX")
A.store("1", "+FLAGS", "\\Seen")
A.store("2", "+FLAGS", "\\Deleted"); A.expunge()
A.append("INBOX", None, None, b"Subject: new\r\n\r\nhi\r\n")
B.noop()
out["fetch"] = s(B.untagged_responses.pop("FETCH", []))
out["expunge"] = s(B.untagged_responses.pop("EXPUNGE", []))
out["exists"] = s(B.untagged_responses.pop("EXISTS", [])[-1:])
# IDLE (RFC 2177) by hand: imaplib 3.11 has no idle().
tag = B._new_tag()
B.send(tag + b" IDLE\r\n")
out["idle_cont"] = s(B.readline())
import subprocess, os
d = subprocess.run([argv[1], "alice"], input=b"Subject: idle\n\nx\n", env=dict(os.environ, YUBIN_CONF=argv[2]), capture_output=True)
out["deliver"] = [d.returncode, s(d.stderr)]
B.sock.settimeout(10)
out["idle_update"] = s(B.readline())
B.send(b"DONE\r\n")
out["idle_done"] = s(B.readline())
A.logout(); B.logout()
`, port, dir, filepath.Join(binDir, "deliver"), s.conf)
	if !strings.Contains(str(out["fetch"]), `1 (UID 1 FLAGS (\Seen))`) || str(out["expunge"]) != "[2]" || str(out["exists"]) != "[2]" {
		t.Errorf("B after NOOP: fetch %v expunge %v exists %v", out["fetch"], out["expunge"], out["exists"])
	}
	if str(out["deliver"]) != "[0 ]" {
		t.Errorf("deliver: %v", out["deliver"])
	}
	if !strings.HasPrefix(str(out["idle_cont"]), "+") || str(out["idle_update"]) != "* 3 EXISTS\r\n" || !strings.Contains(str(out["idle_done"]), "OK") {
		t.Errorf("IDLE: %q %q %q", out["idle_cont"], out["idle_update"], out["idle_done"])
	}
}

// A SELECT of a settled, unchanged folder is answered from the UID list
// without making its records (imapstore's lazy SELECT): what another
// session and deliver(8) change before the selecting session's first
// command is still reported, and FETCH, STORE, EXPUNGE and SEARCH then
// see the folder as it is.
func TestIMAPLazySelectSeesChangesBeforeFirstCommand(t *testing.T) {
	s := newPOP3System(t)
	dir := s.mailbox("alice", map[string]string{
		"cur/1000000001.M1P1.h:2,S": "Subject: a\n\n1\n",
		"cur/1000000002.M1P1.h:2,":  "Subject: b\n\n2\n",
		"cur/1000000003.M1P1.h:2,F": "Subject: c\n\n3\n",
	})
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"new", "cur"} {
		if err := os.Chtimes(filepath.Join(dir, sub), old, old); err != nil {
			t.Fatal(err)
		}
	}
	port, _ := s.startIMAPd(false)
	// The first session writes the UID list, settled.
	s.imaplib(`M = imaplib.IMAP4("127.0.0.1", port); M.login("alice", "tanstaaf"); M.select("INBOX"); M.logout()`, port)
	list, err := os.ReadFile(filepath.Join(dir, "yubin-uidlist"))
	if head, _, _ := strings.Cut(string(list), "\n"); err != nil || !strings.HasSuffix(head, " 1") {
		t.Fatalf("UID list not settled: %q, %v", head, err)
	}
	out := s.imaplib(`
B = imaplib.IMAP4("127.0.0.1", port); B.login("alice", "tanstaaf")
out["select"] = s(B.select("INBOX")[1]) + s(B.response("UNSEEN")[1])
A = imaplib.IMAP4("127.0.0.1", port); A.login("alice", "tanstaaf"); A.select("INBOX")
A.store("1", "+FLAGS", "\\Flagged")
A.store("2", "+FLAGS", "\\Deleted"); A.expunge(); A.logout()
import subprocess, os
d = subprocess.run([argv[0], "alice"], input=b"Subject: d\n\n4\n", env=dict(os.environ, YUBIN_CONF=argv[1]), capture_output=True)
out["deliver"] = [d.returncode, s(d.stderr)]
B.noop()
out["fetch"] = s(B.untagged_responses.pop("FETCH", []))
out["expunge"] = s(B.untagged_responses.pop("EXPUNGE", []))
out["exists"] = s(B.untagged_responses.pop("EXISTS", [])[-1:])
out["flags"] = s(B.fetch("1:*", "(UID FLAGS)")[1])
B.store("1", "+FLAGS", "\\Deleted")
out["expunged"] = s(B.expunge()[1])
out["search"] = s(B.uid("SEARCH", "ALL")[1])
B.logout()
`, port, filepath.Join(binDir, "deliver"), s.conf)
	for k, want := range map[string]string{
		"select":   "[3 2]",
		"deliver":  "[0 ]",
		"fetch":    `[1 (UID 1 FLAGS (\Flagged \Seen))]`,
		"expunge":  "[2]",
		"exists":   "[3]",
		"flags":    `[1 (UID 1 FLAGS (\Flagged \Seen)) 2 (UID 3 FLAGS (\Flagged)) 3 (UID 4 FLAGS (\Recent))]`,
		"expunged": "[1]",
		"search":   "[3 4]",
	} {
		if got := str(out[k]); got != want {
			t.Errorf("%s: %s, want %s", k, got, want)
		}
	}
}

// STARTTLS and implicit TLS (imaps_listen), imaplib verifying the test
// certificate, and AUTHENTICATE PLAIN.
func TestIMAPSTARTTLSAndImplicitTLS(t *testing.T) {
	cert, key := pop3Certificate(t, t.TempDir())
	s := newPOP3System(t, "tls_cert = "+cert, "tls_key = "+key)
	s.mailbox("bob", map[string]string{"new/1.a.h": "Subject: s\n\nsecret mail\n"})
	port, tport := s.startIMAPd(true)
	out := s.imaplib(`
ctx = ssl.create_default_context(cafile=argv[0])
M = imaplib.IMAP4("127.0.0.1", port)
out["caps"] = list(M.capabilities)
out["starttls"] = s(M.starttls(ssl_context=ctx))
out["cipher"] = M.sock.version()
out["auth"] = s(M.authenticate("PLAIN", lambda _: b"\0bob\0correct horse"))
out["select"] = s(M.select("INBOX"))
M.logout()
N = imaplib.IMAP4_SSL("127.0.0.1", int(argv[1]), ssl_context=ctx)
out["implicit"] = N.sock.version()
out["login"] = s(N.login("bob", "correct horse"))
try:
    N.login("bob", "x")
except imaplib.IMAP4.error as e:
    out["relogin"] = str(e)
N.logout()
`, port, cert, strconv.Itoa(tport))
	if !strings.Contains(str(out["caps"]), "STARTTLS") || !strings.HasPrefix(str(out["cipher"]), "TLSv1.") {
		t.Errorf("STARTTLS: caps %v, %v", out["caps"], out["cipher"])
	}
	if !strings.HasPrefix(str(out["auth"]), "[OK") || str(out["select"]) != "[OK [1]]" {
		t.Errorf("AUTHENTICATE PLAIN %v, SELECT %v", out["auth"], out["select"])
	}
	if !strings.HasPrefix(str(out["implicit"]), "TLSv1.") || !strings.HasPrefix(str(out["login"]), "[OK") {
		t.Errorf("implicit TLS: %v %v", out["implicit"], out["login"])
	}
}

// A wrong password is NO [AUTHENTICATIONFAILED], alike for unknown users,
// and the session goes on to a good login.
func TestIMAPBadLoginThenGood(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("alice", nil)
	port, _ := s.startIMAPd(false)
	out := s.imaplib(`
M = imaplib.IMAP4("127.0.0.1", port)
for user, pw in (("alice", "wrong"), ("nobody", "wrong"), ("../etc", "x")):
    try:
        M.login(user, pw)
    except imaplib.IMAP4.error as e:
        out.setdefault("fails", []).append(str(e))
out["login"] = s(M.login("alice", "tanstaaf"))
M.logout()
`, port)
	fails, _ := out["fails"].([]any)
	if len(fails) != 3 || str(fails[0]) != str(fails[1]) || !strings.Contains(str(fails[0]), "AUTHENTICATIONFAILED") {
		t.Errorf("failed logins: %v", out["fails"])
	}
	if !strings.HasPrefix(str(out["login"]), "[OK") {
		t.Errorf("login after failures: %v", out["login"])
	}
}

// mbsync (isync) syncs a 1,000-message account both ways and exits 0:
// everything down, then local flags, a local new message and a local
// deletion up, and a delivery on the server down.
func TestIMAPMbsyncBothWays(t *testing.T) {
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		t.Skip("mbsync is not installed (scripts/test-deps installs isync as root)")
	}
	s := newPOP3System(t)
	files := map[string]string{}
	for i := range 1000 {
		files[fmt.Sprintf("cur/%d.M%dP1.h:2,", 1600000000+i, i)] = fmt.Sprintf("From: a@example.org\nSubject: message %d\nMessage-ID: <%d@example.org>\n\nbody %d\n", i, i, i)
	}
	dir := s.mailbox("bob", files)
	port, _ := s.startIMAPd(false)
	local := filepath.Join(t.TempDir(), "local")
	os.MkdirAll(local, 0o700)
	rc := filepath.Join(t.TempDir(), "mbsyncrc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`IMAPAccount yubin
Host 127.0.0.1
Port %d
User bob
Pass "correct horse"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account yubin

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`, port, local, local)), 0o600)
	sync := func() {
		t.Helper()
		r := runCmd(t, exec.Command(mbsync, "-c", rc, "-a"))
		if r.code != 0 {
			t.Fatalf("mbsync: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	sync()
	// mbsync keeps unseen messages in new/: make them all cur/ for the
	// flag changes below.
	localCur := filepath.Join(local, "INBOX", "cur")
	for _, n := range lsDir(t, filepath.Join(local, "INBOX", "new")) {
		os.Rename(filepath.Join(local, "INBOX", "new", n), filepath.Join(localCur, n+":2,"))
	}
	names := lsDir(t, localCur)
	if len(names) != 1000 {
		t.Fatalf("local INBOX has %d messages after the first sync", len(names))
	}
	if _, err := os.Stat(filepath.Join(local, "Sent")); err != nil {
		t.Errorf("folders not synced: %v", err)
	}
	// Local changes: 10 seen, one deleted, one new; a delivery on the server.
	slices.Sort(names)
	for _, n := range names[:10] {
		to := n
		if !strings.Contains(n, ":2,") {
			to += ":2,"
		}
		os.Rename(filepath.Join(localCur, n), filepath.Join(localCur, to+"S"))
	}
	os.Remove(filepath.Join(localCur, names[10]))
	os.WriteFile(filepath.Join(local, "INBOX", "new", "1700000000.local.h"), []byte("Subject: from the laptop\n\nhello\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "new", "1700000001.M1P1.h"), []byte("Subject: delivered\n\nnew\n"), 0o600)
	sync()

	server := append(lsDir(t, filepath.Join(dir, "cur")), lsDir(t, filepath.Join(dir, "new"))...)
	seen := 0
	for _, n := range server {
		if strings.HasSuffix(n, "S") && strings.Contains(n, ":2,") {
			seen++
		}
	}
	if len(server) != 1001 || seen != 10 {
		t.Errorf("server INBOX: %d messages (want 1001), %d seen (want 10)", len(server), seen)
	}
	out := s.imaplib(`
M = imaplib.IMAP4("127.0.0.1", port); M.login("bob", "correct horse"); M.select("INBOX")
out["laptop"] = s(M.search(None, "SUBJECT", "laptop")[1])
`, port)
	if str(out["laptop"]) == "[]" {
		t.Errorf("the local message did not reach the server")
	}
	localAll := append(lsDir(t, localCur), lsDir(t, filepath.Join(local, "INBOX", "new"))...)
	if len(localAll) != 1001 {
		t.Errorf("local INBOX: %d messages, want 1001", len(localAll))
	}
}

// Answers larger than the server's write batches arrive whole and in
// order: FETCH 1:* over 3,000 messages (lines only, no UID unless asked),
// UID FETCH (UID in every line), a 300 KB BODY[] byte-exact, then NOOP.
func TestIMAPLargeFetchesArriveWhole(t *testing.T) {
	s := newPOP3System(t)
	files := map[string]string{}
	const n = 3000
	for i := 1; i <= n; i++ {
		files[fmt.Sprintf("cur/%d.M%dP1.h:2,S", 1000000000+i, i)] = fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("x", i%50))
	}
	big := "Subject: big\n\n" + strings.Repeat("0123456789abcdef\n", 300<<10/17)
	files[fmt.Sprintf("cur/%d.M0P1.h:2,", 1000000000+n+1)] = big
	s.mailbox("bob", files)
	port, _ := s.startIMAPd(false)
	out := s.imaplib(`
M = imaplib.IMAP4("127.0.0.1", port)
M.login("bob", "correct horse")
M.select("INBOX")
out["fetch"] = s(M.fetch("1:*", "(FLAGS RFC822.SIZE)")[1])
out["uid_fetch"] = s(M.uid("FETCH", "1:*", "(FLAGS)")[1])
out["big"] = s(M.fetch(argv[0], "(BODY.PEEK[])")[1][0][1])
out["noop"] = s(M.noop())
M.logout()
`, port, strconv.Itoa(n+1))
	lines, _ := out["fetch"].([]any)
	if len(lines) != n+1 {
		t.Fatalf("FETCH 1:* gave %d lines, want %d", len(lines), n+1)
	}
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("x", i%50))
		want := fmt.Sprintf("%d (FLAGS (\\Seen) RFC822.SIZE %d)", i, len(body)+strings.Count(body, "\n"))
		if lines[i-1] != want {
			t.Fatalf("FETCH line %d = %q, want %q", i, lines[i-1], want)
		}
	}
	uidLines, _ := out["uid_fetch"].([]any)
	if len(uidLines) != n+1 || uidLines[n-1] != fmt.Sprintf("%d (UID %d FLAGS (\\Seen))", n, n) {
		t.Errorf("UID FETCH: %d lines, line %d %v", len(uidLines), n, uidLines[n-1])
	}
	if out["big"] != strings.ReplaceAll(big, "\n", "\r\n") {
		t.Errorf("BODY[] of %d bytes came as %d bytes", len(big)+strings.Count(big, "\n"), len(str(out["big"])))
	}
	if str(out["noop"]) != "[OK [NOOP completed]]" {
		t.Errorf("NOOP after the fetches = %v", out["noop"])
	}
}

// RENAME INBOX moves all of INBOX's messages, flags and keywords kept,
// into the new folder; INBOX stays, empty (RFC 9051 §6.3.5), and its
// session is told by EXPUNGE. Renaming to INBOX, or onto a folder that
// exists, is refused.
func TestIMAPRenameInboxMovesItsMessages(t *testing.T) {
	s := newPOP3System(t)
	dir := s.mailbox("bob", map[string]string{
		"cur/1000000001.M1P1.h:2,Sa": "Subject: one\n\n1\n",
		"cur/1000000002.M1P1.h:2,":   "Subject: two\n\n2\n",
		"new/1000000003.M1P1.h":      "Subject: three\n\n3\n",
		"yubin-keywords":             "0 $Label1\n",
	})
	port, _ := s.startIMAPd(false)
	out := s.imaplib(`
M = imaplib.IMAP4("127.0.0.1", port)
M.login("bob", "correct horse")
M.select("INBOX")
out["rename"] = raw(M, "RENAME INBOX Old")
out["status"] = s(M.status("INBOX", "(MESSAGES UIDNEXT)")[1])
out["to_inbox"] = s(M.rename("Old", "INBOX"))
out["onto_existing"] = s(M.rename("INBOX", "Sent"))
M.select("Old")
out["old"] = s(M.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1])
M.logout()
`, port)
	if r := str(out["rename"]); strings.Count(r, " EXPUNGE") != 3 || !strings.Contains(r, " OK RENAME") {
		t.Fatalf("RENAME INBOX Old in the selected INBOX = %v, want three EXPUNGE and OK", r)
	}
	if !strings.Contains(str(out["status"]), "MESSAGES 0 UIDNEXT 4") {
		t.Errorf("STATUS INBOX after the rename = %v", out["status"])
	}
	if !strings.Contains(str(out["to_inbox"]), "ALREADYEXISTS") || !strings.Contains(str(out["onto_existing"]), "ALREADYEXISTS") {
		t.Errorf("RENAME Old INBOX = %v, RENAME INBOX Sent = %v", out["to_inbox"], out["onto_existing"])
	}
	old := str(out["old"])
	for _, want := range []string{`FLAGS (\Seen $Label1)`, "Subject: one", "Subject: two", "Subject: three"} {
		if !strings.Contains(old, want) {
			t.Errorf("Old = %s, lacks %s", old, want)
		}
	}
	for _, sub := range []string{"new", "cur"} {
		if names := lsDir(t, filepath.Join(dir, sub)); len(names) != 0 {
			t.Errorf("INBOX %s/ still holds %v", sub, names)
		}
	}
	if n := len(lsDir(t, filepath.Join(dir, ".Old", "cur"))) + len(lsDir(t, filepath.Join(dir, ".Old", "new"))); n != 3 {
		t.Errorf(".Old holds %d messages, want 3", n)
	}
}

// A sequence number beyond the last message, "*" in an empty mailbox
// included, is answered BAD (RFC 9051 §9, seq-number) by FETCH, STORE,
// COPY and MOVE, and the session goes on; a UID beyond the last is no
// error (§6.4.9).
func TestIMAPSequenceBeyondTheLastIsBAD(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("bob", map[string]string{
		"cur/1000000001.M1P1.h:2,S": "Subject: one\n\n1\n",
		"cur/1000000002.M1P1.h:2,":  "Subject: two\n\n2\n",
	})
	port, _ := s.startIMAPd(false)
	out := s.imaplib(`
M = imaplib.IMAP4("127.0.0.1", port)
M.login("bob", "correct horse")
M.select("INBOX")
for c in ["FETCH 3 FLAGS", "FETCH 2:5 FLAGS", "FETCH 3:* FLAGS", "STORE 9 +FLAGS (\\Seen)", "COPY 3 Trash", "MOVE 3 Trash",
          "FETCH 2 FLAGS", "UID FETCH 9 FLAGS"]:
    out[c] = raw(M, c)[-1].split(" ", 2)[1]
M.select("Trash")
out["empty *"] = raw(M, "FETCH * FLAGS")[-1].split(" ", 2)[1]
M.logout()
`, port)
	want := map[string]string{"FETCH 3 FLAGS": "BAD", "FETCH 2:5 FLAGS": "BAD", "FETCH 3:* FLAGS": "BAD",
		`STORE 9 +FLAGS (\Seen)`: "BAD", "COPY 3 Trash": "BAD", "MOVE 3 Trash": "BAD", "empty *": "BAD",
		"FETCH 2 FLAGS": "OK", "UID FETCH 9 FLAGS": "OK"}
	for c, w := range want {
		if str(out[c]) != w {
			t.Errorf("%s: %v, want %s", c, out[c], w)
		}
	}
}
