package auth

import (
	"errors"
	"testing"
)

type finder map[string]*User

func (f finder) Lookup(name string) (*User, error) {
	if u := f[name]; u != nil {
		return u, nil
	}
	return nil, ErrNoUser
}
func (f finder) Virtual() bool { return true }

func TestResolveLogin(t *testing.T) {
	users := finder{
		"bob":               {Name: "bob", UID: 1000, Virtual: true},
		"ann@other.example": {Name: "ann@other.example", UID: 1001, Virtual: true},
		"root":              {Name: "root", UID: 0},
	}
	for _, tc := range []struct {
		name, login, user, local, domain string
		err                              error
	}{
		{"bare name gets the host name", "Bob", "bob", "bob", "mx.example", nil},
		{"user@domain first", "ann@Other.Example.", "ann@other.example", "ann", "other.example", nil},
		{"falls back to the bare name", "bob@elsewhere.example", "bob", "bob", "elsewhere.example", nil},
		{"unknown", "carl", "", "", "", ErrNoUser},
		{"path in the name", "../bob", "", "", "", ErrNoUser},
		{"path in the domain", "bob@a/b", "", "", "", ErrNoUser},
		{"system root", "root", "", "", "", ErrNoUser},
	} {
		u, local, domain, err := ResolveLogin(users, tc.login, "mx.example")
		if tc.err != nil {
			if !errors.Is(err, tc.err) || u != nil {
				t.Errorf("%s: got %v, %v; want %v", tc.name, u, err, tc.err)
			}
			continue
		}
		if err != nil || u.Name != tc.user || local != tc.local || domain != tc.domain {
			t.Errorf("%s: got %v %q %q %v", tc.name, u, local, domain, err)
		}
	}
}
