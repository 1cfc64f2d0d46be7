package auth

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Hashes of "correct horse", made with libxcrypt (Python's crypt module on
// Debian 12), the library that writes /etc/shadow.
const (
	yescryptHash = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79"
	sha512Hash   = "$6$b2yF/orEoeajoawe$kPgcY0g0dS20XM3dTSHIvL9kjyaZef/h9XY7PrOhBcpPwdnBNyS935FmSIUai./l8ph638ywWP8ytDxNFh1Vb/"
	sha512Rounds = "$6$rounds=1000$saltsaltsalt$Dt0JGUnDdc4DdUjlyySCHRPx7U2pABqWbPrinz5ntgKXqDPocxu0xlsHum4.yrEVleQdkaDZxTsKnM8ZF88Lz1"
	sha256Hash   = "$5$Zf77LLA.lhXQgiUy$ftZ6EBvoH0eGppidg2xQsLEt9Zakca76l/YfhCX3jo/"
	bcrypt2a     = "$2a$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2"
	bcrypt2b     = "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2"
	bcrypt2y     = "$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2"
	md5Hash      = "$1$RF9DKVSg$fJ.t28Jc0KqdEcx18BttA/"
)

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		name, hash  string
		unsupported bool // wrong and right passwords both fail as unsupported
	}{
		{name: "yescrypt", hash: yescryptHash},
		{name: "sha512-crypt", hash: sha512Hash},
		{name: "sha512-crypt rounds", hash: sha512Rounds},
		{name: "sha256-crypt", hash: sha256Hash},
		{name: "bcrypt 2a", hash: bcrypt2a},
		{name: "bcrypt 2b", hash: bcrypt2b},
		{name: "bcrypt 2y", hash: bcrypt2y},
		{name: "md5-crypt", hash: md5Hash},
		{name: "plain", hash: "{PLAIN}correct horse"},
		{name: "des crypt", hash: "abJnggxhB/yWI", unsupported: true},
		{name: "other scheme", hash: "{SSHA}xyz", unsupported: true},
		{name: "yescrypt other params", hash: "$y$jDT$abc$def", unsupported: true},
		{name: "truncated yescrypt", hash: "$y$", unsupported: true},
		{name: "truncated sha512-crypt", hash: "$6$", unsupported: true},
		{name: "truncated md5-crypt", hash: "$1$x", unsupported: true},
		{name: "truncated bcrypt", hash: "$2b$05$abc", unsupported: true},
	}
	for _, tt := range tests {
		err := CheckPassword(tt.hash, "correct horse")
		if tt.unsupported {
			if !errors.Is(err, ErrUnsupportedHash) || !errors.Is(err, ErrBadPassword) {
				t.Errorf("%s: right password: %v; want unsupported", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: right password: %v", tt.name, err)
		}
		for _, wrong := range []string{"", "correct hors", "correct horse ", "Correct horse"} {
			if err := CheckPassword(tt.hash, wrong); !errors.Is(err, ErrBadPassword) || errors.Is(err, ErrUnsupportedHash) {
				t.Errorf("%s: password %q: %v; want ErrBadPassword", tt.name, wrong, err)
			}
		}
	}
}

func TestLockedAccounts(t *testing.T) {
	for _, hash := range []string{"", "*", "!", "!" + sha512Hash, "!!", "*LK*"} {
		for _, pw := range []string{"", "correct horse", "!", "*"} {
			if err := CheckPassword(hash, pw); !errors.Is(err, ErrBadPassword) {
				t.Errorf("hash %q password %q: %v; want ErrBadPassword", hash, pw, err)
			}
		}
	}
}

func TestPlainSecret(t *testing.T) {
	if s, ok := PlainSecret("{PLAIN}tanstaaf"); !ok || s != "tanstaaf" {
		t.Errorf("PlainSecret({PLAIN}tanstaaf) = %q, %v", s, ok)
	}
	if _, ok := PlainSecret(sha512Hash); ok {
		t.Errorf("a crypt hash gave a clear secret")
	}
}

func TestAuthenticate(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice:"+bcrypt2b+":1000:1000:/home/alice\nbob:{PLAIN}tanstaaf:1001:1001:/home/bob\n"), 0o600)
	d, err := Open(users, "root")
	if err != nil {
		t.Fatal(err)
	}
	if !d.HasPlainSecrets() {
		t.Error("HasPlainSecrets is false with bob's {PLAIN}")
	}
	alice, _ := d.Lookup("alice")
	if err := d.Authenticate(alice, "correct horse"); err != nil {
		t.Errorf("alice: %v", err)
	}
	if err := d.Authenticate(alice, "tanstaaf"); !errors.Is(err, ErrBadPassword) {
		t.Errorf("alice, wrong: %v", err)
	}
	if err := d.Authenticate(nil, "correct horse"); !errors.Is(err, ErrBadPassword) {
		t.Errorf("no user: %v", err)
	}

	// System users: the shadow file's hash.
	ShadowFile = filepath.Join(dir, "shadow")
	defer func() { ShadowFile = "/etc/shadow" }()
	os.WriteFile(ShadowFile, []byte("root:*:19000:0:99999:7:::\ncarol:"+yescryptHash+":19000:0:99999:7:::\n"), 0o600)
	sys, _ := Open("", "root")
	if sys.HasPlainSecrets() {
		t.Error("system users have plain secrets")
	}
	for name, want := range map[string]error{"carol": nil, "root": ErrBadPassword, "dave": ErrBadPassword} {
		err := sys.Authenticate(&User{Name: name}, "correct horse")
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("system user %s: %v; want %v", name, err, want)
		}
	}
	os.Remove(ShadowFile)
	if err := sys.Authenticate(&User{Name: "carol"}, "correct horse"); err == nil || errors.Is(err, ErrBadPassword) {
		t.Errorf("unreadable shadow: %v; want a temporary error", err)
	}
}
