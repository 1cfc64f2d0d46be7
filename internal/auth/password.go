package auth

// Passwords: the stored hashes of users_file and /etc/shadow, and the one
// check that every login goes through.
//
// A stored password is a crypt(3) string, recognised by its prefix:
//
//	$y$...                  yescrypt (Debian 12's default in /etc/shadow;
//	                        libxcrypt's "$y$j" parameter encoding)
//	$2a$ $2b$ $2y$          bcrypt
//	$6$ / $5$               SHA-512-crypt / SHA-256-crypt (also $6$rounds=N$)
//	$1$                     MD5-crypt, verified for old /etc/shadow files only
//	{PLAIN}secret           the secret itself: the only form APOP can use
//
// Anything else never matches: "*", "!" and "!..." (locked accounts), an
// empty field (no password means no login here), and hashes of unknown
// schemes (DES crypt, Dovecot's other {SCHEME} prefixes), which give
// ErrUnsupportedHash so the log can say why a login failed. Comparisons are
// constant-time; the hashing is done by x/crypto's bcrypt, GehirnInc/crypt
// and Openwall's yescrypt-go.

import (
	"bufio"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/GehirnInc/crypt"
	_ "github.com/GehirnInc/crypt/md5_crypt"    // $1$
	_ "github.com/GehirnInc/crypt/sha256_crypt" // $5$
	_ "github.com/GehirnInc/crypt/sha512_crypt" // $6$
	"github.com/openwall/yescrypt-go"
	"golang.org/x/crypto/bcrypt"
)

var (
	// ErrBadPassword: the password does not match, or the user cannot log
	// in at all (no such user, locked account). Callers answer all of
	// these alike, so that a client cannot tell a user exists.
	ErrBadPassword = errors.New("authentication failed")
	// ErrUnsupportedHash: the stored hash is of a scheme not verified here
	// (errors.Is(err, ErrBadPassword) holds too).
	ErrUnsupportedHash = fmt.Errorf("%w: unsupported password hash", ErrBadPassword)
)

// plainPrefix marks a clear-text secret in users_file (Dovecot's {PLAIN}).
const plainPrefix = "{PLAIN}"

// ShadowFile is where system users' hashes are read; a variable for tests.
var ShadowFile = "/etc/shadow"

// CheckPassword reports whether password matches the stored hash: nil, or an
// error for which errors.Is(err, ErrBadPassword) holds.
func CheckPassword(hash, password string) error {
	var ok bool
	switch {
	case strings.HasPrefix(hash, plainPrefix):
		ok = subtle.ConstantTimeCompare([]byte(hash[len(plainPrefix):]), []byte(password)) == 1
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		// bcrypt compares in constant time; $2y$ (PHP) and $2b$
		// (OpenBSD) are $2a$ without its old 8-bit bug, as here.
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return fmt.Errorf("%w: bcrypt: %v", ErrUnsupportedHash, err)
		}
		ok = err == nil
	case strings.HasPrefix(hash, "$y$"):
		got, err := yescrypt.Hash([]byte(password), []byte(hash))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupportedHash, err)
		}
		ok = subtle.ConstantTimeCompare(got, []byte(hash)) == 1
	case strings.HasPrefix(hash, "$6$"), strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$1$"):
		// Only the setting (up to the last "$") goes in: given the
		// whole hash, GehirnInc/crypt reads a salt shorter than 16
		// characters after rounds=N as running on into the hash.
		setting := hash[:strings.LastIndexByte(hash, '$')]
		got, err := crypt.NewFromHash(hash).Generate([]byte(password), []byte(setting))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupportedHash, err)
		}
		ok = subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
	case hash == "" || hash[0] == '!' || hash[0] == '*':
		return fmt.Errorf("%w: account locked or without a password", ErrBadPassword)
	default:
		return ErrUnsupportedHash
	}
	if !ok {
		return ErrBadPassword
	}
	return nil
}

// PlainSecret returns the clear secret of a {PLAIN} hash, which APOP needs.
func PlainSecret(hash string) (string, bool) {
	if !strings.HasPrefix(hash, plainPrefix) {
		return "", false
	}
	return hash[len(plainPrefix):], true
}

// HasPlainSecrets reports whether some user of users_file has a {PLAIN}
// secret, so that APOP can be offered. System users never have one.
func (d *Directory) HasPlainSecrets() bool {
	for _, u := range d.users {
		if _, ok := PlainSecret(u.Hash); ok {
			return true
		}
	}
	return false
}

// Hash returns the stored password hash of u: users_file's, or the system's
// from ShadowFile (readable by root only).
func (d *Directory) Hash(u *User) (string, error) {
	if u.Virtual {
		return u.Hash, nil
	}
	return ShadowHash(ShadowFile, u.Name)
}

// Authenticate checks password for u, which is nil when the login named no
// user: then a hash is computed all the same (of the first users_file
// user's kind, or yescrypt for system users), so that the time taken does
// not tell whether the user exists. The error is ErrBadPassword (wrapped)
// for every wrong or impossible login; anything else (an unreadable shadow
// file) is a temporary failure of the server.
func (d *Directory) Authenticate(u *User, password string) error {
	if u == nil {
		CheckPassword(d.decoy(), password)
		return fmt.Errorf("%w: no such user", ErrBadPassword)
	}
	hash, err := d.Hash(u)
	if err != nil {
		return err
	}
	return CheckPassword(hash, password)
}

// decoy is a hash of the kind that real logins check.
func (d *Directory) decoy() string {
	for _, u := range d.users {
		if !strings.HasPrefix(u.Hash, plainPrefix) && strings.HasPrefix(u.Hash, "$") {
			return u.Hash
		}
	}
	if d.users != nil {
		return "{PLAIN}\x00decoy"
	}
	return "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79"
}

// ShadowHash returns name's hash field in a shadow(5) file. A user missing
// from it gets "*" (no login), as an account without a shadow entry has no
// usable password; a file that cannot be read is an error.
func ShadowHash(file, name string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("password hashes: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		user, rest, ok := strings.Cut(sc.Text(), ":")
		if ok && user == name {
			hash, _, _ := strings.Cut(rest, ":")
			return hash, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return "*", nil
}
