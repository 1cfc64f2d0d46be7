package auth

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func writeUsers(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsersFile(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(me.Uid)
	gid, _ := strconv.Atoi(me.Gid)
	p := writeUsers(t, "# demo users\n\nalice:$6$salt$hash:1001:1002:/home/alice\nbob@example.org:$2y$10$x\n")
	d, err := Open(p, me.Username)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		uid, gid int
		home     string
		hash     string
	}{
		{"alice", 1001, 1002, "/home/alice", "$6$salt$hash"},
		{"bob@example.org", uid, gid, "", "$2y$10$x"}, // mail_owner's ids
	}
	for _, tt := range tests {
		u, err := d.Lookup(tt.name)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if u.UID != tt.uid || u.GID != tt.gid || u.Home != tt.home || u.Hash != tt.hash || !u.Virtual {
			t.Errorf("%s: %+v", tt.name, u)
		}
	}
	for _, name := range []string{"carol", "root", "../alice", "", "-alice", "al/ice", "alice\n"} {
		if _, err := d.Lookup(name); !errors.Is(err, ErrNoUser) {
			t.Errorf("Lookup(%q) = %v, want ErrNoUser", name, err)
		}
	}
}

func TestUsersFileErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"three fields", "a:b:c\n", ":1: want name:password-hash"},
		{"bad uid", "# x\na:h:x:1:/h\n", ":2: uid:"},
		{"relative home", "a:h:1:1:home\n", ":1: home"},
		{"duplicate", "a:h\na:h\n", ":2: user \"a\" given twice"},
		{"bad name", "../x:h\n", ":1: bad user name"},
	}
	for _, tt := range tests {
		_, err := Open(writeUsers(t, tt.text), "root")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	d, err := Open(writeUsers(t, "v:h\n"), "no-such-owner")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lookup("v"); !errors.Is(err, ErrConfig) || errors.Is(err, ErrNoUser) {
		t.Errorf("virtual user with a missing mail_owner: %v, want ErrConfig", err)
	}
	if _, err := Open("/nonexistent/users", "root"); err == nil {
		t.Error("missing users_file accepted")
	}
}

func TestSystemUsers(t *testing.T) {
	d, err := Open("", "root")
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.Lookup("root")
	if err != nil || u.UID != 0 || u.Home == "" || u.Virtual {
		t.Errorf("root: %+v, %v", u, err)
	}
	if _, err := d.Lookup("no-such-user-here"); !errors.Is(err, ErrNoUser) {
		t.Errorf("unknown user: %v", err)
	}
}
