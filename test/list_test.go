package test

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"yubin/internal/aliases"
	"yubin/internal/auth"
)

// A mailing list on a plain mail server: an alias of 500 members with an
// owner-, compiled by newaliases, expanded as the runner expands it, and
// delivered by deliver: 500 copies, byte-identical bodies, headers unchanged
// below the two deliver adds, the owner as the envelope sender.
func TestMailingListOf500(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var users, members []string
	for i := 1; i <= 500; i++ {
		name := fmt.Sprintf("m%03d", i)
		members = append(members, name)
		users = append(users, name+":{PLAIN}x") // mail owned by mail_owner
	}
	usersFile := filepath.Join(dir, "users")
	os.WriteFile(usersFile, []byte(strings.Join(users, "\n")+"\n"), 0o600)
	s := newSystem(t, "users_file = "+usersFile, "mail_owner = "+me.Username,
		"mail_dir = "+filepath.Join(dir, "mail", "%u", "Maildir"))
	aliasText := "# the list\nlist: " + strings.Join(members, ",\n\t") + "\nowner-list: m001\n"
	os.WriteFile(filepath.Join(s.dir, "aliases"), []byte(aliasText), 0o644)
	if r := s.run("", "newaliases"); r.code != 0 || !strings.Contains(r.stdout, "aliases, longest") {
		t.Fatalf("newaliases: exit %d %s%s", r.code, r.stdout, r.stderr)
	}

	db, warning, err := aliases.Open(filepath.Join(s.dir, "aliases"))
	if err != nil || warning != nil {
		t.Fatalf("aliases.Open: %v %v", err, warning)
	}
	defer db.Close()
	dirUsers, err := auth.Open(usersFile, me.Username)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := db.Expand("list", &aliases.Options{Sender: "poster@example.org", Domain: s.hostname, Users: dirUsers})
	if err != nil {
		t.Fatal(err)
	}
	if len(deliveries) != 500 {
		t.Fatalf("list expands to %d deliveries, want 500", len(deliveries))
	}
	args := []string{"-s", "-f", deliveries[0].Sender}
	for _, d := range deliveries {
		if d.Kind != aliases.Mailbox || d.Sender != "owner-list@"+s.hostname {
			t.Fatalf("delivery %+v: want a mailbox with sender owner-list@%s", d, s.hostname)
		}
		args = append(args, d.Value)
	}

	msg := "From: poster@example.org\nTo: list@" + s.hostname + "\nSubject: to all 500\nX-Keep: as is\n\n" +
		strings.Repeat("the same body for everyone\n", 100)
	r := s.run(msg, "deliver", args...)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 500 {
		t.Fatalf("deliver: exit %d, %d status lines\n%s", r.code, strings.Count(r.stdout, "\n"), r.stderr)
	}
	for _, m := range members {
		files, _ := filepath.Glob(filepath.Join(dir, "mail", m, "Maildir", "new", "*"))
		if len(files) != 1 {
			t.Fatalf("%s has %d messages, want 1", m, len(files))
		}
		got, _ := os.ReadFile(files[0])
		want := "Return-Path: <owner-list@" + s.hostname + ">\nDelivered-To: " + m + "@" + s.hostname + "\n" + msg
		if !bytes.Equal(got, []byte(want)) {
			t.Fatalf("%s's copy differs:\n%s", m, got)
		}
	}
}
