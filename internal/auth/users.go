// Package auth knows the mail users: who exists, under which uid and gid
// their mail is stored, and where their home is. With yubin.conf's
// users_file empty, the users are the system's (the password database,
// through os/user and so through NSS where the program is built with cgo).
// With users_file set, they are virtual users, one per line, in the style of
// Dovecot's passwd-file:
//
//	# comment
//	name:password-hash[:uid:gid:home]
//
// name is a login (it may be user@domain); password-hash is a crypt(3)
// string; uid, gid and home are optional together: without them the user's
// mail is owned by mail_owner and the user has no home. Blank lines and lines
// starting with # are ignored; a name given twice is an error, as is any
// malformed line (file:line in the message).
//
// Names are looked up as given (the caller folds case where mail addresses
// call for it). A name with "/", NUL or another control character, or a
// leading "-" or "." (so no ".."), is no user: such names never reach a path
// or a command line.
package auth

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

var (
	// ErrNoUser: there is no such user (EX_NOUSER, 550 5.1.1).
	ErrNoUser = errors.New("no such user")
	// ErrConfig: the users cannot be known because the configuration is
	// wrong (EX_CONFIG).
	ErrConfig = errors.New("user configuration error")
)

// User is one mail user.
type User struct {
	Name    string
	UID     int
	GID     int
	Home    string // "" when a virtual user has none
	Hash    string // users_file's password hash; "" for system users
	Virtual bool   // from users_file
}

// Directory answers who the users are.
type Directory struct {
	file      string           // users_file, "" for system users
	users     map[string]*User // users_file's users
	mailOwner string
}

// Open reads usersFile (when not empty) and returns the directory of users.
// mailOwner owns the mail of virtual users without uid and gid.
func Open(usersFile, mailOwner string) (*Directory, error) {
	d := &Directory{file: usersFile, mailOwner: mailOwner}
	if usersFile == "" {
		return d, nil
	}
	f, err := os.Open(usersFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d.users = make(map[string]*User)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		u, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", usersFile, n, err)
		}
		if d.users[u.Name] != nil {
			return nil, fmt.Errorf("%s:%d: user %q given twice", usersFile, n, u.Name)
		}
		d.users[u.Name] = u
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", usersFile, err)
	}
	return d, nil
}

// parseLine reads name:hash[:uid:gid:home].
func parseLine(line string) (*User, error) {
	f := strings.Split(line, ":")
	if len(f) != 2 && len(f) != 5 {
		return nil, fmt.Errorf("want name:password-hash or name:password-hash:uid:gid:home, got %d fields", len(f))
	}
	u := &User{Name: f[0], Hash: f[1], UID: -1, GID: -1, Virtual: true}
	if !ValidName(u.Name) {
		return nil, fmt.Errorf("bad user name %q", u.Name)
	}
	if len(f) == 5 {
		var err error
		if u.UID, err = parseID(f[2]); err != nil {
			return nil, fmt.Errorf("uid: %w", err)
		}
		if u.GID, err = parseID(f[3]); err != nil {
			return nil, fmt.Errorf("gid: %w", err)
		}
		u.Home = f[4]
		if u.Home != "" && !strings.HasPrefix(u.Home, "/") {
			return nil, fmt.Errorf("home %q is not an absolute path", u.Home)
		}
	}
	return u, nil
}

func parseID(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// ValidName reports whether name can be a user: not empty, no "/", no NUL or
// control character, no leading "-" or "." (no "..", no option-looking name).
func ValidName(name string) bool {
	if name == "" || len(name) > 255 || name[0] == '-' || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' {
			return false
		}
	}
	return true
}

// Lookup returns the user called name, or ErrNoUser.
func (d *Directory) Lookup(name string) (*User, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	if d.users != nil {
		u := d.users[name]
		if u == nil {
			return nil, fmt.Errorf("%w: %q", ErrNoUser, name)
		}
		if u.UID < 0 {
			owner, err := systemUser(d.mailOwner)
			if errors.Is(err, ErrNoUser) {
				// The configuration is wrong, not the recipient.
				return nil, fmt.Errorf("%w: mail_owner %q is not a user", ErrConfig, d.mailOwner)
			}
			if err != nil {
				return nil, fmt.Errorf("mail_owner: %w", err)
			}
			v := *u
			v.UID, v.GID = owner.UID, owner.GID
			return &v, nil
		}
		return u, nil
	}
	return systemUser(name)
}

// Virtual reports whether the users come from a users_file.
func (d *Directory) Virtual() bool { return d.users != nil }

func systemUser(name string) (*User, error) {
	pw, err := user.Lookup(name)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		return nil, fmt.Errorf("%w: %q", ErrNoUser, name)
	}
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.Atoi(pw.Uid)
	gid, err2 := strconv.Atoi(pw.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: uid %q gid %q are not numbers", name, pw.Uid, pw.Gid)
	}
	return &User{Name: pw.Username, UID: uid, GID: gid, Home: pw.HomeDir}, nil
}
