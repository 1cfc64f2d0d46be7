package aliases

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"yubin/internal/auth"
)

// fakeUsers is a user directory for tests.
type fakeUsers map[string]*auth.User

func (f fakeUsers) Lookup(name string) (*auth.User, error) {
	if u := f[name]; u != nil {
		return u, nil
	}
	return nil, fmt.Errorf("%w: %q", auth.ErrNoUser, name)
}

func users(names ...string) fakeUsers {
	f := fakeUsers{"root": {Name: "root", UID: 0, GID: 0}}
	for i, n := range names {
		f[n] = &auth.User{Name: n, UID: 1001 + i, GID: 1001 + i}
	}
	return f
}

var mailOwner = &auth.User{Name: "mail", UID: 8, GID: 8}

func options(u fakeUsers) *Options {
	return &Options{
		Sender:       "poster@ext.org",
		Domain:       "mx.test",
		LocalDomains: []string{"mx.test", "localhost"},
		Users:        u,
		MailOwner:    mailOwner,
	}
}

func parseDB(t *testing.T, text string) *DB {
	t.Helper()
	f, errs := Parse("/etc/aliases", strings.NewReader(text))
	if len(errs) > 0 {
		t.Fatalf("aliases: %v", errs)
	}
	return New(f)
}

// summary renders deliveries as "kind value [as=user] [from=sender]"; the
// sender only when it is not the message's, the user only for pipes and files.
func summary(ds []Delivery, sender string) []string {
	var out []string
	for _, d := range ds {
		s := d.Kind.String() + " " + d.Value
		switch d.Kind {
		case Pipe, Append:
			s += " as=" + d.User.Name
		case Failed:
			s += ": " + errName(d.Err)
		}
		if d.Sender != sender {
			s += " from=<" + d.Sender + ">"
		}
		out = append(out, s)
	}
	return out
}

func errName(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{{ErrNoUser, "nouser"}, {ErrLoop, "loop"}, {ErrTooDeep, "toodeep"}, {ErrUnsafe, "unsafe"}, {os.ErrNotExist, "notexist"}} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	var le *Error
	if errors.As(err, &le) {
		return fmt.Sprintf("line %d", le.Line)
	}
	return err.Error()
}

func TestExpand(t *testing.T) {
	deep := ""
	for i := range 12 {
		deep += fmt.Sprintf("l%d: l%d\n", i, i+1)
	}
	deep += "l12: alice\n"
	tests := []struct {
		name    string
		aliases string
		rcpt    string
		sender  string // "" means poster@ext.org
		want    []string
		warns   int // loops dropped
	}{
		{name: "user without alias", rcpt: "alice", want: []string{"mailbox alice"}},
		{name: "user in a local domain, any case", rcpt: "Alice@MX.test", want: []string{"mailbox alice"}},
		{name: "remote recipient", rcpt: "Bob@elsewhere.org", want: []string{"address Bob@elsewhere.org"}},
		{name: "no such user", rcpt: "nobody", want: []string{"failed nobody: nouser"}},
		{name: "alias to users", aliases: "staff: alice, bob\n", rcpt: "staff@mx.test",
			want: []string{"mailbox alice", "mailbox bob"}},
		{name: "quoted alias name", aliases: `"john doe": alice` + "\n", rcpt: `"John Doe"@mx.test`,
			want: []string{"mailbox alice"}},
		{name: "remote and local-domain addresses", aliases: "x: bob@remote.org, carol@localhost\n", rcpt: "x",
			want: []string{"address bob@remote.org", "mailbox carol"}},
		{name: "nested", aliases: "a: b, alice\nb: bob, c\nc: carol\n", rcpt: "a",
			want: []string{"mailbox bob", "mailbox carol", "mailbox alice"}},
		{name: "loop of aliases", aliases: "a: b\nb: a\n", rcpt: "a",
			want: []string{"failed a: loop"}, warns: 1},
		{name: "looping branch dropped", aliases: "list: alice, list2\nlist2: list, bob\n", rcpt: "list",
			want: []string{"mailbox alice", "mailbox bob"}, warns: 1},
		{name: "self-reference keeps the user's copy", aliases: "alice: alice, bob\n", rcpt: "alice",
			want: []string{"mailbox alice", "mailbox bob"}},
		{name: "user reached through a loop", aliases: "a: b\nb: alice, a\n", rcpt: "a",
			want: []string{"mailbox alice"}, warns: 1},
		{name: "depth limit", aliases: deep, rcpt: "l0", want: []string{"failed l10: toodeep"}},
		{name: "within the depth limit", aliases: deep, rcpt: "l4", want: []string{"mailbox alice"}},
		{name: "duplicates delivered once", aliases: "list: alice, Alice, alice@mx.test, sub, sub\nsub: alice, bob\n", rcpt: "list",
			want: []string{"mailbox alice", "mailbox bob"}},
		{name: "\\user", aliases: "alice: \\alice, bob@remote.org\n", rcpt: "alice",
			want: []string{"mailbox alice", "address bob@remote.org"}},
		{name: "\\user that does not exist", aliases: "x: \\ghost, bob\n", rcpt: "x",
			want: []string{`failed \ghost: nouser`, "mailbox bob"}},
		{name: "unknown member", aliases: "list: alice, ghost, bob\n", rcpt: "list",
			want: []string{"mailbox alice", "failed ghost: nouser", "mailbox bob"}},
		{name: "postmaster defaults to root", rcpt: "PostMaster", want: []string{"mailbox root"}},
		{name: "mailer-daemon defaults to root", rcpt: "MAILER-DAEMON@localhost", want: []string{"mailbox root"}},
		{name: "postmaster given", aliases: "postmaster: alice\n", rcpt: "postmaster", want: []string{"mailbox alice"}},
		{name: "owner- becomes the sender", aliases: "list: alice, bob@remote.org\nowner-list: carol\n", rcpt: "list",
			want: []string{"mailbox alice from=<owner-list@mx.test>", "address bob@remote.org from=<owner-list@mx.test>"}},
		{name: "a bounce stays a bounce", aliases: "list: alice\nowner-list: carol\n", rcpt: "list", sender: "<>",
			want: []string{"mailbox alice"}},
		{name: "nested list keeps the nearest owner", aliases: "big: sub, own\nowner-big: carol\nsub: alice\nown: bob\nowner-own: alice\n", rcpt: "big",
			want: []string{"mailbox alice from=<owner-big@mx.test>", "mailbox bob from=<owner-own@mx.test>"}},
		{name: "owner of an owner- alias", aliases: "owner-list: alice\nowner-owner: root\n", rcpt: "owner-list",
			want: []string{"mailbox alice from=<owner-owner@mx.test>"}},
		{name: "pipes and files run as the mail owner", aliases: "x: \"|/usr/bin/archive x\", /var/spool/x.mbox\n", rcpt: "x",
			want: []string{"pipe /usr/bin/archive x as=mail", "file /var/spool/x.mbox as=mail"}},
	}
	for _, tt := range tests {
		db := parseDB(t, tt.aliases)
		o := options(users("alice", "bob", "carol"))
		switch tt.sender {
		case "":
			tt.sender = o.Sender
		case "<>":
			tt.sender, o.Sender = "", ""
		}
		var warns []error
		o.Warn = func(err error) { warns = append(warns, err) }
		ds, err := db.Expand(tt.rcpt, o)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := summary(ds, tt.sender); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		if len(warns) != tt.warns {
			t.Errorf("%s: warnings %v, want %d", tt.name, warns, tt.warns)
		}
		for _, w := range warns {
			if !errors.Is(w, ErrLoop) {
				t.Errorf("%s: warning %v is not a loop", tt.name, w)
			}
		}
	}
}

// Each delivery says where its target is written and through which alias.
func TestExpandSources(t *testing.T) {
	db := parseDB(t, "# staff\nstaff: alice,\n  team\nteam: bob\n")
	ds, err := db.Expand("staff", options(users("alice", "bob")))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %s %s; %s %s %s", ds[0].Value, ds[0].Alias, ds[0].Source, ds[1].Value, ds[1].Alias, ds[1].Source)
	if want := "alice staff /etc/aliases:2; bob team /etc/aliases:4"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if ds[0].User == nil || ds[0].User.UID != 1001 {
		t.Errorf("mailbox delivery without its user: %+v", ds[0])
	}
}

// A list of 500 members gives 500 deliveries, each once.
func TestExpandLargeList(t *testing.T) {
	var names []string
	for i := range 500 {
		names = append(names, fmt.Sprintf("m%03d", i))
	}
	text := "big: " + strings.Join(names, ",\n  ") + ",\n  m000, m499@mx.test\n"
	ds, err := parseDB(t, text).Expand("big", options(users(names...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 500 {
		t.Fatalf("%d deliveries, want 500", len(ds))
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if d.Kind != Mailbox || seen[d.Value] {
			t.Fatalf("delivery %+v (twice: %v)", d, seen[d.Value])
		}
		seen[d.Value] = true
	}
}

func TestExpandTooMany(t *testing.T) {
	var names []string
	for i := range 101 {
		names = append(names, fmt.Sprintf("r%d@remote.org", i))
	}
	db := parseDB(t, "big: "+strings.Join(names, ", ")+"\n")
	o := options(users())
	o.MaxTargets = 100
	if ds, err := db.Expand("big", o); !errors.Is(err, ErrTooMany) || ds != nil {
		t.Fatalf("Expand = %d deliveries, %v; want ErrTooMany", len(ds), err)
	}
	o.MaxTargets = 101
	if ds, err := db.Expand("big", o); err != nil || len(ds) != 101 {
		t.Fatalf("Expand with room = %d deliveries, %v", len(ds), err)
	}
}

// A temporary failure of the user database fails the whole expansion, so
// that the message waits rather than bounces.
func TestExpandTemporary(t *testing.T) {
	broken := errors.New("nss: connection refused")
	o := options(users())
	o.Users = usersFunc(func(string) (*auth.User, error) { return nil, broken })
	if _, err := parseDB(t, "list: alice\n").Expand("list", o); !errors.Is(err, broken) {
		t.Fatalf("err = %v, want the lookup's error", err)
	}
}

type usersFunc func(string) (*auth.User, error)

func (f usersFunc) Lookup(name string) (*auth.User, error) { return f(name) }

// testOwner returns the uid that files written by this test should count
// as owned by "us": as root, files can be given to anyone; otherwise they
// are ours.
func asRoot() bool { return os.Geteuid() == 0 }

func writeFile(t *testing.T, path, text string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 && asRoot() {
		if err := os.Chown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExpandInclude(t *testing.T) {
	dir := t.TempDir()
	// The mail owner is the owner of the include files when the test cannot
	// give them to root; a stranger is someone else.
	owner := &auth.User{Name: "mail", UID: os.Getuid(), GID: os.Getgid()}
	stranger := 4242
	if asRoot() {
		owner = mailOwner
	}
	tests := []struct {
		name     string
		file     string
		mode     os.FileMode
		fileUID  int // -1: as written
		owner    *auth.User
		want     []string
		needRoot bool
	}{
		{name: "members", file: "alice, bob@remote.org\n# gone: carol\n\ncarol\n", mode: 0o644, fileUID: -1, owner: owner,
			want: []string{"mailbox alice", "address bob@remote.org", "mailbox carol"}},
		{name: "pipes and files from a trusted file", file: "|/bin/archive\n/var/x.mbox\n", mode: 0o644, fileUID: -1, owner: owner,
			want: []string{"pipe /bin/archive as=mail", "file /var/x.mbox as=mail"}},
		{name: "owned by root", file: "|/bin/archive\n", mode: 0o644, fileUID: 0, owner: mailOwner, needRoot: true,
			want: []string{"pipe /bin/archive as=mail"}},
		{name: "group-writable: no pipes or files", file: "alice\n|/bin/archive\n/var/x.mbox\n", mode: 0o664, fileUID: -1, owner: owner,
			want: []string{"mailbox alice", "failed |/bin/archive: unsafe", "failed /var/x.mbox: unsafe"}},
		{name: "world-writable: no pipes", file: "|/bin/archive\n", mode: 0o646, fileUID: -1, owner: owner,
			want: []string{"failed |/bin/archive: unsafe"}},
		{name: "someone else's file: no pipes", file: "alice, |/bin/archive\n", mode: 0o644, fileUID: stranger, owner: mailOwner, needRoot: true,
			want: []string{"mailbox alice", "failed |/bin/archive: unsafe"}},
		{name: "not the mail owner's file: no pipes", file: "alice, |/bin/archive\n", mode: 0o644, fileUID: -1,
			owner: &auth.User{Name: "mail", UID: os.Getuid() + 1}, want: []string{"mailbox alice", "failed |/bin/archive: unsafe"}},
		{name: "bad lines fail, the rest is delivered", file: "alice\nbob@\ncarol\n", mode: 0o644, fileUID: -1, owner: owner,
			want: []string{"failed :include:LIST: line 2", "mailbox alice", "mailbox carol"}},
		{name: "including itself", file: "alice\n:include:LIST\n", mode: 0o644, fileUID: -1, owner: owner,
			want: []string{"mailbox alice"}},
	}
	for i, tt := range tests {
		if tt.needRoot && !asRoot() {
			continue
		}
		if !tt.needRoot && asRoot() && tt.owner.UID == os.Getuid()+1 {
			continue // root owns what it writes, and root is trusted
		}
		list := filepath.Join(dir, fmt.Sprintf("list%d", i))
		writeFile(t, list, strings.ReplaceAll(tt.file, "LIST", list), tt.mode, tt.fileUID)
		db := parseDB(t, "list: :include:"+list+"\n")
		o := options(users("alice", "bob", "carol"))
		o.MailOwner = tt.owner
		ds, err := db.Expand("list", o)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		want := strings.Split(strings.ReplaceAll(strings.Join(tt.want, "\n"), "LIST", list), "\n")
		if got := summary(ds, o.Sender); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, want)
		}
		for _, d := range ds {
			if d.Kind == Mailbox && !strings.HasPrefix(d.Source, list+":") {
				t.Errorf("%s: source %q, want %s:line", tt.name, d.Source, list)
			}
		}
	}
}

func TestExpandIncludeMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	db := parseDB(t, "list: alice, :include:"+missing+"\n")
	ds, err := db.Expand("list", options(users("alice")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mailbox alice", "failed :include:" + missing + ": notexist"}
	if got := summary(ds, "poster@ext.org"); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// An empty list file delivers nothing, and that is not an error.
func TestExpandEmptyInclude(t *testing.T) {
	list := filepath.Join(t.TempDir(), "list")
	writeFile(t, list, "# no members yet\n", 0o644, -1)
	ds, err := parseDB(t, "list: :include:"+list+"\n").Expand("list", options(users()))
	if err != nil || len(ds) != 0 {
		t.Fatalf("Expand = %v, %v; want nothing", summary(ds, ""), err)
	}
}

func TestForward(t *testing.T) {
	uid := os.Getuid()
	if asRoot() {
		uid = 1001
	}
	tests := []struct {
		name     string
		forward  string // "" means no .forward
		mode     os.FileMode
		fileUID  int // -1: as written (ours)
		userUID  int
		aliases  string
		rcpt     string
		want     []string
		ignored  bool
		needRoot bool
	}{
		{name: "no .forward", userUID: uid, rcpt: "alice", want: []string{"mailbox alice"}},
		{name: "forward everything", forward: "bob@remote.org\n\\alice\n\"|/usr/bin/vacation alice\"\n/home/alice/archive\n",
			mode: 0o644, fileUID: uid, userUID: uid, rcpt: "alice",
			want: []string{"address bob@remote.org", "mailbox alice", "pipe /usr/bin/vacation alice as=alice", "file /home/alice/archive as=alice"}},
		{name: "own name without backslash", forward: "alice, carol\n", mode: 0o600, fileUID: uid, userUID: uid, rcpt: "alice",
			want: []string{"mailbox alice", "mailbox carol"}},
		{name: "owned by root", forward: "carol\n", mode: 0o644, fileUID: 0, userUID: 1001, rcpt: "alice", needRoot: true,
			want: []string{"mailbox carol"}},
		{name: "group-writable", forward: "carol\n", mode: 0o664, fileUID: uid, userUID: uid, rcpt: "alice",
			want: []string{"mailbox alice"}, ignored: true},
		{name: "world-writable", forward: "carol\n", mode: 0o606, fileUID: uid, userUID: uid, rcpt: "alice",
			want: []string{"mailbox alice"}, ignored: true},
		{name: "someone else's", forward: "carol\n", mode: 0o644, fileUID: 4242, userUID: uid, rcpt: "alice", needRoot: true,
			want: []string{"mailbox alice"}, ignored: true},
		{name: "not the user's", forward: "carol\n", mode: 0o644, fileUID: -1, userUID: os.Getuid() + 1, rcpt: "alice",
			want: []string{"mailbox alice"}, ignored: true},
		{name: "a bad line keeps the mail home", forward: "carol\nbob@\n", mode: 0o644, fileUID: uid, userUID: uid, rcpt: "alice",
			want: []string{"mailbox alice"}, ignored: true},
		{name: "empty", forward: "# nothing\n", mode: 0o644, fileUID: uid, userUID: uid, rcpt: "alice",
			want: []string{"mailbox alice"}},
		{name: "through an alias", forward: "carol\n", mode: 0o644, fileUID: uid, userUID: uid, aliases: "staff: alice, bob\n", rcpt: "staff",
			want: []string{"mailbox carol", "mailbox bob"}},
		{name: "\\user in an alias skips it", forward: "carol\n", mode: 0o644, fileUID: uid, userUID: uid, aliases: "staff: \\alice\n", rcpt: "staff",
			want: []string{"mailbox alice"}},
	}
	for _, tt := range tests {
		if tt.needRoot && !asRoot() || asRoot() && tt.fileUID == -1 && tt.userUID != uid {
			continue
		}
		home := t.TempDir()
		if tt.forward != "" {
			writeFile(t, filepath.Join(home, ".forward"), tt.forward, tt.mode, tt.fileUID)
		}
		u := users("bob", "carol")
		u["alice"] = &auth.User{Name: "alice", UID: tt.userUID, GID: 100, Home: home}
		o := options(u)
		var warns []error
		o.Warn = func(err error) { warns = append(warns, err) }
		ds, err := parseDB(t, tt.aliases).Expand(tt.rcpt, o)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := summary(ds, o.Sender); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		ignored := len(warns) == 1 && errors.Is(warns[0], ErrForwardIgnored) && strings.Contains(warns[0].Error(), home)
		if ignored != tt.ignored || len(warns) > 1 {
			t.Errorf("%s: warnings %v, want ignored=%v", tt.name, warns, tt.ignored)
		}
		for _, d := range ds {
			if d.Kind == Pipe && d.User.UID != tt.userUID {
				t.Errorf("%s: pipe runs as uid %d, want the user's %d", tt.name, d.User.UID, tt.userUID)
			}
		}
	}
}

// A .forward that is a directory is ignored; one in a home that does not
// exist is no .forward at all.
func TestForwardOddFiles(t *testing.T) {
	home := t.TempDir()
	os.Mkdir(filepath.Join(home, ".forward"), 0o755)
	u := &auth.User{Name: "alice", UID: os.Getuid(), Home: home}
	if _, err := ReadForward(filepath.Join(home, ".forward"), u); !errors.Is(err, ErrForwardIgnored) {
		t.Errorf("directory: %v, want ErrForwardIgnored", err)
	}
	if ts, err := ReadForward(filepath.Join(home, "nohome", ".forward"), u); err != nil || ts != nil {
		t.Errorf("missing home: %v %v", ts, err)
	}
}
