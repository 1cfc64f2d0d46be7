package mailbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"yubin/internal/auth"
	"yubin/internal/maildir"
	"yubin/internal/status"
)

func TestExpandMailDir(t *testing.T) {
	tests := []struct {
		name, mailDir, user, domain, home string
		want                              string
		wantErr                           string
	}{
		{"default", "~/Maildir", "bob", "example.org", "/home/bob", "/home/bob/Maildir", ""},
		{"home itself", "~", "bob", "example.org", "/home/bob", "/home/bob", ""},
		{"trailing slash", "~/Maildir/", "bob", "example.org", "/home/bob", "/home/bob/Maildir", ""},
		{"virtual", "/var/mail/%d/%u", "bob", "example.org", "", "/var/mail/example.org/bob", ""},
		{"virtual with home", "/var/mail/%d/%u", "bob", "example.org", "/home/bob", "/var/mail/example.org/bob", ""},
		{"twice", "/srv/%u/%d/%u", "bob", "x.org", "", "/srv/bob/x.org/bob", ""},
		{"home and user", "~/mail/%u", "bob", "x.org", "/home/bob", "/home/bob/mail/bob", ""},
		{"no home", "~/Maildir", "bob", "example.org", "", "", "needs a home directory"},
		{"relative", "Maildir", "bob", "example.org", "/home/bob", "", "not an absolute path"},
		{"bad percent", "/var/mail/%x", "bob", "example.org", "", "", "only %u and %d"},
		{"trailing percent", "/var/mail/%", "bob", "example.org", "", "", "only %u and %d"},
		{"slash in user", "/var/mail/%u", "a/b", "example.org", "", "", "cannot be part of a path"},
		{"dot-dot domain", "/var/mail/%d/%u", "bob", "..", "", "", "cannot be part of a path"},
	}
	for _, tt := range tests {
		got, err := ExpandMailDir(tt.mailDir, tt.user, tt.domain, tt.home)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrConfig) {
				t.Errorf("%s: got %q, %v; want ErrConfig saying %q", tt.name, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestCheckHeader(t *testing.T) {
	tests := []struct {
		name      string
		msg       string
		delivered []string
		wantErr   string // "" when fine
	}{
		{"simple", "Subject: x\nFrom: a@b\n\nbody\n", nil, ""},
		{"no body", "Subject: x\n", nil, ""},
		{"no final newline", "Subject: x", nil, ""},
		{"empty header", "\nbody only\n", nil, ""},
		{"folded", "Subject: a\n  b\n\tc\n\n", nil, ""},
		{"CRLF", "Subject: x\r\nX-A: y\r\n\r\nbody\r\n", nil, ""},
		{"body may be anything", "Subject: x\n\nnot: a header\n\x00\n  indented\n", nil, ""},
		{"empty value", "X-Empty:\n\n", nil, ""},
		{"delivered-to", "Delivered-To: Bob@Example.ORG\nDelivered-to:  <carol@x>\n\n", []string{"bob@example.org", "carol@x"}, ""},
		{"folded delivered-to", "Delivered-To:\n bob@x\n\n", []string{"bob@x"}, ""},
		{"not delivered-to", "X-Delivered-To: bob@x\n\nDelivered-To: carol@x\n", nil, ""},
		{"not a header", "hello world\n\nbody\n", nil, `line 1 is not a header field: "hello world"`},
		{"late non-header", "Subject: x\nthis is text\n", nil, "line 2 is not a header field"},
		{"space in name", "Sub ject: x\n\n", nil, "line 1 is not a header field"},
		{"colon first", ": x\n\n", nil, "line 1 is not a header field"},
		{"continuation first", " Subject: x\n\n", nil, "line 1 continues a header field"},
		{"NUL", "Subject: a\x00b\n\n", nil, "line 1 of the header holds a NUL byte"},
		{"8-bit name", "Sübject: x\n\n", nil, "line 1 is not a header field"},
	}
	for _, tt := range tests {
		got, err := checkHeader([]byte(tt.msg), 1, true)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want ErrMalformed saying %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.delivered) {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.delivered)
		}
	}
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		limit      int64
		wantSender string
		wantBody   string
		wantErr    error
	}{
		{"plain", "Subject: x\n\nhi\n", 0, "", "Subject: x\n\nhi\n", nil},
		{"From_ line", "From alice@example.org Thu Nov 26 10:00:00 2026\nSubject: x\n\nhi\n", 0, "alice@example.org", "Subject: x\n\nhi\n", nil},
		{"From_ line of a bounce", "From MAILER-DAEMON Thu Nov 26 10:00:00 2026\nSubject: x\n\n", 0, "", "Subject: x\n\n", nil},
		{"within the limit", "Subject: x\n\n", 12, "", "Subject: x\n\n", nil},
		{"over the limit", "Subject: x\n\n!", 12, "", "", ErrTooBig},
		{"empty", "", 0, "", "", ErrMalformed},
		{"only a From_ line", "From a@b Thu Nov 26 10:00:00 2026\n", 0, "", "", ErrMalformed},
		{"not a message", "just text\n", 0, "", "", ErrMalformed},
	}
	for _, tt := range tests {
		m, err := ReadMessage(strings.NewReader(tt.in), tt.limit)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		body, _ := io.ReadAll(m.body())
		if m.Sender != tt.wantSender || string(body) != tt.wantBody || m.Size() != int64(len(tt.wantBody)) {
			t.Errorf("%s: sender %q, body %q (size %d); want %q, %q", tt.name, m.Sender, body, m.Size(), tt.wantSender, tt.wantBody)
		}
		m.Close()
	}
}

// An MTA that hands over a message with an mbox From_ line (Postfix's
// mailbox_command, procmail, sendmail's local mailer) has prepended its own
// trace of this delivery: it is taken over, not doubled, and its
// Delivered-To (the MTA checked that loop itself) is not ours.
func TestMTATraceIsTakenOver(t *testing.T) {
	const rest = "Received: from x\nSubject: x\n\nhi\n"
	tests := []struct {
		name, in           string
		sender, orig, body string
		loops              bool
	}{
		{"Postfix mailbox_command",
			"From alice@x.org  Thu Nov 26 10:00:00 2026\nReturn-Path: <alice@x.org>\nX-Original-To: info@example.org\nDelivered-To: bob@example.org\n" + rest,
			"alice@x.org", "info@example.org", rest, false},
		{"folded",
			"From alice@x.org  Thu Nov 26 10:00:00 2026\nReturn-Path:\n <alice@x.org>\nDelivered-To: bob@example.org\n" + rest,
			"alice@x.org", "", rest, false},
		{"bounce",
			"From MAILER-DAEMON  Thu Nov 26 10:00:00 2026\nReturn-Path: <>\nDelivered-To: bob@example.org\n" + rest,
			"", "", rest, false},
		{"a real loop further down",
			"From alice@x.org  Thu Nov 26 10:00:00 2026\nDelivered-To: bob@example.org\nReceived: y\nDelivered-To: bob@example.org\n" + rest,
			"alice@x.org", "", "Received: y\nDelivered-To: bob@example.org\n" + rest, true},
		{"no From_ line: nothing taken over",
			"Return-Path: <alice@x.org>\nDelivered-To: bob@example.org\n" + rest,
			"", "", "Return-Path: <alice@x.org>\nDelivered-To: bob@example.org\n" + rest, true},
	}
	for _, tt := range tests {
		m, err := ReadMessage(strings.NewReader(tt.in), 0)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		body, _ := io.ReadAll(m.body())
		if m.Sender != tt.sender || m.OrigRcpt != tt.orig || string(body) != tt.body || m.loops("bob@example.org") != tt.loops {
			t.Errorf("%s: sender %q orig %q loops %v body %q; want %q %q %v %q", tt.name,
				m.Sender, m.OrigRcpt, m.loops("bob@example.org"), body, tt.sender, tt.orig, tt.loops, tt.body)
		}
	}
}

func TestReadLargeMessageSpills(t *testing.T) {
	in := "Delivered-To: bob@x\nSubject: big\n\n" + strings.Repeat("0123456789abcdef\n", memLimit/17+100)
	m, err := ReadMessage(strings.NewReader(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.file == nil {
		t.Fatal("a message over memLimit stayed in memory")
	}
	for range 2 { // one read of the input, as many copies as recipients
		body, _ := io.ReadAll(m.body())
		if string(body) != in {
			t.Fatalf("body of %d bytes differs from the input's %d", len(body), len(in))
		}
	}
	if !m.loops("BOB@x") {
		t.Error("Delivered-To of a spilled message not seen")
	}
	if _, err := ReadMessage(strings.NewReader(in), memLimit+10); !errors.Is(err, ErrTooBig) {
		t.Errorf("over the limit: %v", err)
	}
}

func TestLoops(t *testing.T) {
	m, err := ReadMessage(strings.NewReader("Delivered-To: Bob@Example.org\nDelivered-To: <carol@example.org>\n\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"bob@example.org", true},
		{"BOB@EXAMPLE.ORG", true},
		{"carol@example.org", true},
		{"dave@example.org", false},
		{"bob@example.net", false},
		{"bob", false},
	}
	for _, tt := range tests {
		if got := m.loops(tt.addr); got != tt.want {
			t.Errorf("loops(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct {
		name, in, sender, orig, addr, want string
	}{
		{"plain", "Subject: x\n\n", "alice@example.org", "", "bob@example.org",
			"Return-Path: <alice@example.org>\nDelivered-To: bob@example.org\n"},
		{"null sender", "Subject: x\n\n", "", "", "bob@example.org",
			"Return-Path: <>\nDelivered-To: bob@example.org\n"},
		{"original recipient", "Subject: x\n\n", "a@x", "info@example.org", "bob@example.org",
			"Return-Path: <a@x>\nX-Original-To: info@example.org\nDelivered-To: bob@example.org\n"},
		{"CRLF message", "Subject: x\r\n\r\n", "a@x", "", "bob@example.org",
			"Return-Path: <a@x>\r\nDelivered-To: bob@example.org\r\n"},
	}
	for _, tt := range tests {
		m, err := ReadMessage(strings.NewReader(tt.in), 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Sender, m.OrigRcpt = tt.sender, tt.orig
		if got := string(m.prefix(tt.addr)); got != tt.want {
			t.Errorf("%s: prefix = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// users is a directory of virtual users for tests.
type users map[string]*auth.User

func (u users) Lookup(name string) (*auth.User, error) {
	if x := u[name]; x != nil {
		return x, nil
	}
	return nil, fmt.Errorf("%w: %q", auth.ErrNoUser, name)
}

func (u users) Virtual() bool { return true }

func me(name, home string) *auth.User {
	return &auth.User{Name: name, UID: os.Geteuid(), GID: os.Getegid(), Home: home, Virtual: true}
}

func TestDeliver(t *testing.T) {
	base := t.TempDir()
	d := New(Options{MailDir: base + "/%d/%u", Hostname: "mx.example.org", Users: users{
		"bob":             me("bob", ""),
		"carol@other.org": me("carol@other.org", ""),
	}})
	in := "Subject: hi\nDelivered-To: someone@else\n\nbody\n"
	tests := []struct {
		rcpt, wantDir, wantAddr string
		wantErr                 error
	}{
		{"bob", "mx.example.org/bob", "bob@mx.example.org", nil},
		{"BOB@Example.ORG", "example.org/bob", "bob@example.org", nil},
		{"carol@other.org", "other.org/carol", "carol@other.org", nil},
		{"carol", "", "", ErrNoUser},
		{"nobody@example.org", "", "", ErrNoUser},
		{"someone@else", "", "", ErrNoUser},
		{"bob@../../etc", "", "", ErrNoUser},
		{"bob@", "", "", ErrNoUser},
		{"", "", "", ErrNoUser},
		{"bob@else", "", "", nil}, // delivered; the loop is someone@else's
	}
	for _, tt := range tests {
		m, err := ReadMessage(strings.NewReader(in), 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Sender = "alice@example.net"
		path, err := d.Deliver(m, tt.rcpt)
		if tt.wantErr != nil || err != nil {
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil {
				t.Errorf("%q: err = %v, want %v", tt.rcpt, err, tt.wantErr)
			}
			continue
		}
		if tt.wantDir == "" {
			continue
		}
		if want := filepath.Join(base, tt.wantDir, "new"); filepath.Dir(path) != want {
			t.Errorf("%q: delivered to %s, want into %s", tt.rcpt, path, want)
		}
		got, _ := os.ReadFile(path)
		want := "Return-Path: <alice@example.net>\nDelivered-To: " + tt.wantAddr + "\n" + in
		if string(got) != want {
			t.Errorf("%q: stored %q, want %q", tt.rcpt, got, want)
		}
	}
}

func TestDeliverRefusals(t *testing.T) {
	base := t.TempDir()
	d := New(Options{MailDir: "~/Maildir", Hostname: "mx.example.org", Users: users{
		"bob":    me("bob", base+"/bob"),
		"nohome": me("nohome", ""),
		"other":  {Name: "other", UID: os.Geteuid() + 1, GID: 1, Home: base + "/other"},
	}})
	tests := []struct {
		name, in, rcpt, sender string
		want                   error
		wantText               string
		wantStatus             int
	}{
		{"loop", "Delivered-To: BOB@mx.example.org\n\n", "bob", "", ErrLoop, "mail forwarding loop for bob@mx.example.org", status.DataErr},
		{"loop with domain", "Delivered-To: bob@example.org\n\n", "Bob@Example.org", "", ErrLoop, "mail forwarding loop for bob@example.org", status.DataErr},
		{"no home", "Subject: x\n\n", "nohome", "", ErrConfig, `mail_dir "~/Maildir" needs a home directory`, status.Config},
		{"header injection", "Subject: x\n\n", "bob", "a@b>\nX-Evil: 1", ErrMalformed, "bad sender address", status.DataErr},
		{"unknown", "Subject: x\n\n", "nobody", "", ErrNoUser, `no such user: "nobody"`, status.NoUser},
	}
	if os.Geteuid() != 0 {
		tests = append(tests, struct {
			name, in, rcpt, sender string
			want                   error
			wantText               string
			wantStatus             int
		}{"someone else's", "Subject: x\n\n", "other", "", ErrNotPermitted, "may deliver only into its own mailboxes", status.NoPerm})
	}
	for _, tt := range tests {
		m, err := ReadMessage(strings.NewReader(tt.in), 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Sender = tt.sender
		_, err = d.Deliver(m, tt.rcpt)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantText) || Status(err) != tt.wantStatus {
			t.Errorf("%s: err = %v (status %d); want %v saying %q, status %d", tt.name, err, Status(err), tt.want, tt.wantText, tt.wantStatus)
		}
	}
	if _, err := os.Stat(base + "/bob/Maildir/new"); err == nil {
		if ents, _ := os.ReadDir(base + "/bob/Maildir/new"); len(ents) > 0 {
			t.Errorf("a refused message was stored")
		}
	}
}

func TestStatus(t *testing.T) {
	pathErr := func(errno syscall.Errno) error {
		return fmt.Errorf("maildir /x: %w", &os.PathError{Op: "open", Path: "/x/tmp/y", Err: errno})
	}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"delivered", nil, 0},
		{"no user", fmt.Errorf("%w: %q", auth.ErrNoUser, "x"), 67},
		{"loop", fmt.Errorf("%w for a@b", ErrLoop), 65},
		{"malformed", fmt.Errorf("%w: empty message", ErrMalformed), 65},
		{"too big", ErrTooBig, 65},
		{"not permitted", ErrNotPermitted, 77},
		{"config", ErrConfig, 78},
		{"quota", &maildir.QuotaError{Quota: maildir.Quota{Bytes: 1}}, 75},
		{"disk full", pathErr(syscall.ENOSPC), 75},
		{"disk quota", pathErr(syscall.EDQUOT), 75},
		{"I/O error", pathErr(syscall.EIO), 75},
		{"read-only", pathErr(syscall.EROFS), 75},
		{"no access", pathErr(syscall.EACCES), 73},
		{"not a directory", pathErr(syscall.ENOTDIR), 73},
		{"file too big", pathErr(syscall.EFBIG), 73},
		{"privileges", fmt.Errorf("%w to uid 7: %v", errPrivilege, syscall.EPERM), 75},
		{"unknown", errors.New("something odd"), 75},
	}
	for _, tt := range tests {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("%s: Status(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// As root, a delivery is made with the user's uid and gid, and root's
// rights come back afterwards.
func TestDeliverSwitchesToTheUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	const uid, gid = 54321, 54322 // need not exist in the password database
	base := t.TempDir()
	for d := base; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // the user must reach its home
	}
	home := filepath.Join(base, "home")
	os.Mkdir(home, 0o755)
	os.Chown(home, uid, gid)
	closed := filepath.Join(base, "closed") // root's, 0700
	os.Mkdir(closed, 0o700)
	d := New(Options{MailDir: "~/Maildir", Hostname: "mx.example.org", Users: users{
		"dana": {Name: "dana", UID: uid, GID: gid, Home: home},
		"eve":  {Name: "eve", UID: uid, GID: gid, Home: closed},
	}})
	m, err := ReadMessage(strings.NewReader("Subject: x\n\n"), 0)
	if err != nil {
		t.Fatal(err)
	}
	path, err := d.Deliver(m, "dana")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(home, "Maildir"), filepath.Join(home, "Maildir", "new")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := st.Sys().(*syscall.Stat_t); s.Uid != uid || s.Gid != gid {
			t.Errorf("%s owned by %d:%d, want %d:%d", p, s.Uid, s.Gid, uid, gid)
		}
	}
	if os.Geteuid() != 0 || os.Getegid() != 0 {
		t.Fatalf("still uid %d gid %d after the delivery", os.Geteuid(), os.Getegid())
	}
	// Root could write there; the user cannot.
	_, err = d.Deliver(m, "eve")
	if !errors.Is(err, syscall.EACCES) || Status(err) != status.CantCreat {
		t.Errorf("delivery into a directory closed to the user: %v (status %d), want EACCES and 73", err, Status(err))
	}
	if _, err := os.Stat(filepath.Join(closed, "Maildir")); err == nil {
		t.Error("a Maildir was created with root's rights")
	}
	if os.Geteuid() != 0 {
		t.Fatal("not root after a failed delivery")
	}
}
