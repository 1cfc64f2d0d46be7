package address

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string
		bad            bool
	}{
		{name: "plain", in: "user@Example.COM", want: "user@example.com"},
		{name: "local part keeps case", in: "John.Doe@x.org", want: "John.Doe@x.org"},
		{name: "angle brackets", in: "<user@x.org>", want: "user@x.org"},
		{name: "display name", in: "Full Name <user@x.org>", want: "user@x.org"},
		{name: "quoted display name with bracket", in: `"a <b>" <user@x.org>`, want: "user@x.org"},
		{name: "bare user", in: "root", want: "root"},
		{name: "spaces around", in: "  root  ", want: "root"},
		{name: "quoted local part", in: `"john doe"@x.org`, want: `"john doe"@x.org`},
		{name: "quoted local part with @", in: `"a@b"@x.org`, want: `"a@b"@x.org`},
		{name: "address literal", in: "postmaster@[127.0.0.1]", want: "postmaster@[127.0.0.1]"},
		{name: "utf8 domain", in: "user@bücher.example", want: "user@bücher.example"},
		{name: "trailing dot", in: "user@x.org.", bad: true},
		{name: "two addresses", in: "a@x.org, b@x.org", bad: true},
		{name: "group", in: "team: a@x.org;", want: "a@x.org"},
		{name: "empty", in: "", bad: true},
		{name: "empty brackets", in: "<>", bad: true},
		{name: "unbalanced bracket", in: "<user@x.org", bad: true},
		{name: "stray bracket", in: "user>@x.org", bad: true},
		{name: "empty local", in: "@x.org", bad: true},
		{name: "empty domain", in: "user@", bad: true},
		{name: "double dot domain", in: "user@x..org", bad: true},
		{name: "space", in: "us er@x.org", bad: true},
		{name: "control char", in: "user\r\n@x.org", bad: true},
		{name: "unclosed quote", in: `"john@x.org`, bad: true},
		{name: "text after quote", in: `"john"doe@x.org`, bad: true},
		{name: "underscore domain", in: "a@x_y.org", bad: true},
		{name: "bad literal", in: "a@[1.2.3.4", bad: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: Parse(%q) = %q, want an error", tt.name, tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: Parse(%q) = %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
		}
	}
}

func TestQualifyAndDomain(t *testing.T) {
	tests := []struct{ in, qualified, domain string }{
		{"root", "root@host.example", "host.example"},
		{"a@X.org", "a@X.org", "x.org"},
		{`"a@b"`, `"a@b"@host.example`, "host.example"},
	}
	for _, tt := range tests {
		q := Qualify(tt.in, "Host.Example")
		if q != tt.qualified || Domain(q) != tt.domain {
			t.Errorf("Qualify(%q) = %q (domain %q); want %q (%q)", tt.in, q, Domain(q), tt.qualified, tt.domain)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"user@x.org", `"a b"@x`, "Name <a@b>", "<>", "root", "a@[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		// What Parse accepts it accepts again unchanged.
		if b, err := Parse(a); err != nil || b != a {
			t.Fatalf("Parse(%q) = %q, but Parse(%q) = %q, %v", s, a, a, b, err)
		}
	})
}

func TestParseList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		bad      bool
	}{
		{name: "two", in: "a@x.org, Bee <b@y.org>", want: []string{"a@x.org", "b@y.org"}},
		{name: "bare names", in: "root, postmaster", want: []string{"root", "postmaster"}},
		{name: "group", in: "team: a@x.org, b@x.org;, c@z.org", want: []string{"a@x.org", "b@x.org", "c@z.org"}},
		{name: "empty group", in: "undisclosed-recipients:;", want: nil},
		{name: "comments", in: "a@x.org (Alice), (x) b@y.org", want: []string{"a@x.org", "b@y.org"}},
		{name: "quoted display name", in: `"Doe, John" <j@x.org>`, want: []string{"j@x.org"}},
		{name: "quoted local part", in: `"a b"@x.org`, want: []string{`"a b"@x.org`}},
		{name: "obsolete route", in: "<@relay.org:u@x.org>", want: []string{"u@x.org"}},
		{name: "empty elements", in: ", a@x.org,,", want: []string{"a@x.org"}},
		{name: "null", in: "<>", want: nil},
		{name: "missing comma", in: "a@x.org b@y.org", bad: true},
		{name: "unclosed angle", in: "A <a@x.org", bad: true},
		{name: "control character", in: "a@x.org\r\nRCPT TO:<b@y>", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseList(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: ParseList(%q) = %q, want an error", tt.name, tt.in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: ParseList(%q) = %q, %v; want %q", tt.name, tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"a@x, B <b@y>", "g: a@x;", `"q"@x (c)`, "<@r:u@x>", "<>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseList(s)
		if err != nil {
			return
		}
		for _, a := range list {
			if a == "" || strings.ContainsFunc(a, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("ParseList(%q) gave %q", s, a)
			}
		}
	})
}
