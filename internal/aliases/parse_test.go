package aliases

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// show renders targets as "kind:value@line" for comparisons.
func show(ts []Target) string {
	var s []string
	for _, t := range ts {
		s = append(s, fmt.Sprintf("%v:%s@%d", t.Kind, t.Value, t.Line))
	}
	return strings.Join(s, " ")
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want map[string]string // alias → show(targets)
	}{
		{name: "one user", text: "root: alice\n",
			want: map[string]string{"root": "local:alice@1"}},
		{name: "every kind", text: `staff: alice, Bob@Example.ORG, "|/bin/cat -n", /var/log/staff, :include:/etc/lists/staff, \carol` + "\n",
			want: map[string]string{"staff": "local:alice@1 address:Bob@example.org@1 pipe:/bin/cat -n@1 file:/var/log/staff@1 include:/etc/lists/staff@1 mailbox:carol@1"}},
		{name: "indented continuation", text: "# lists\nlist: a,\n    b,\n\tc\nnext: d\n",
			want: map[string]string{"list": "local:a@2 local:b@3 local:c@4", "next": "local:d@5"}},
		{name: "backslash continuation", text: "list: a, \\\nb\n",
			want: map[string]string{"list": "local:a@1 local:b@2"}},
		{name: "comment inside a list", text: "list: a,\n# b left\n    c\n",
			want: map[string]string{"list": "local:a@1 local:c@3"}},
		{name: "indented comment", text: "list: a,\n    # b left\n    c\n",
			want: map[string]string{"list": "local:a@1 local:c@3"}},
		{name: "blank line inside a list", text: "list: a,\n\n    c\n",
			want: map[string]string{"list": "local:a@1 local:c@3"}},
		{name: "quoted name", text: `"John Doe": jdoe` + "\n" + `"a:b@c": x` + "\n",
			want: map[string]string{"john doe": "local:jdoe@1", "a:b@c": "local:x@2"}},
		{name: "names and local targets fold", text: "Root: Alice, \\BOB\nPostMaster: Root\n",
			want: map[string]string{"root": "local:alice@1 mailbox:bob@1", "postmaster": "local:root@2"}},
		{name: "quoted pipe with commas", text: `x: "|/usr/bin/prog -a, -b", y` + "\n",
			want: map[string]string{"x": "pipe:/usr/bin/prog -a, -b@1 local:y@1"}},
		{name: "unquoted pipe with arguments", text: "x: |/usr/bin/vacation alice\n",
			want: map[string]string{"x": "pipe:/usr/bin/vacation alice@1"}},
		{name: "quoted file", text: `x: "/var/mail/with space"` + "\n",
			want: map[string]string{"x": "file:/var/mail/with space@1"}},
		{name: "display names and comments", text: "x: Bob Smith <bob@x.org>, carol@y.org (Carol, C.), \"Doe, J\" <j@z.org>\n",
			want: map[string]string{"x": "address:bob@x.org@1 address:carol@y.org@1 address:j@z.org@1"}},
		{name: "quoted local parts", text: `x: "a b"@x.org, "c d"` + "\n",
			want: map[string]string{"x": `address:"a b"@x.org@1 local:c d@1`}},
		{name: "CRLF", text: "a: b,\r\n  c\r\nd: e\r\n",
			want: map[string]string{"a": "local:b@1 local:c@2", "d": "local:e@3"}},
		{name: "trailing and doubled commas", text: "x: a,, b,\n",
			want: map[string]string{"x": "local:a@1 local:b@1"}},
		{name: "include in capitals, spaced", text: "x: :INCLUDE: /etc/l\n",
			want: map[string]string{"x": "include:/etc/l@1"}},
		{name: "no final newline", text: "  # indented comment first\nx: y",
			want: map[string]string{"x": "local:y@2"}},
		{name: "dotted names", text: "john.doe: j.doe\n",
			want: map[string]string{"john.doe": "local:j.doe@1"}},
		{name: "empty file", text: "", want: map[string]string{}},
	}
	for _, tt := range tests {
		f, errs := Parse("aliases", strings.NewReader(tt.text))
		if len(errs) > 0 {
			t.Errorf("%s: errors %v", tt.name, errs)
			continue
		}
		got := map[string]string{}
		for _, a := range f.Aliases {
			got[a.Name] = show(a.Targets)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		lines []int    // the line of each error, in order
		want  []string // a part of each message
		keep  map[string]string
	}{
		{name: "missing colon", text: "root alice\n", lines: []int{1}, want: []string{"missing colon"}},
		{name: "indented first line", text: "  alice\n  bob\nroot: a\n", lines: []int{1}, want: []string{"continues no alias"},
			keep: map[string]string{"root": "local:a@3"}},
		{name: "missing value", text: "root:\nstaff:   \n", lines: []int{1, 2}, want: []string{"missing value", "missing value"}},
		{name: "duplicate", text: "a: b\nA: c\n", lines: []int{2}, want: []string{`"a" already defined at line 1`},
			keep: map[string]string{"a": "local:b@1"}},
		{name: "name with a domain", text: "a@b: c\n", lines: []int{1}, want: []string{"has a domain"}},
		{name: "name with a space", text: "a b: c\n", lines: []int{1}, want: []string{"must be quoted"}},
		{name: "missing name", text: ": c\n", lines: []int{1}, want: []string{"missing alias name"}},
		{name: "bad address keeps the rest", text: "a: b@, c\n", lines: []int{1}, want: []string{`bad address "b@"`},
			keep: map[string]string{"a": "local:c@1"}},
		{name: "error on a continuation line", text: "a: b,\n  c@,\n  d\n", lines: []int{2}, want: []string{`"c@"`},
			keep: map[string]string{"a": "local:b@1 local:d@3"}},
		{name: "all targets bad drops the alias", text: "a: b@\n", lines: []int{1}, want: []string{"bad address"},
			keep: map[string]string{}},
		{name: "relative include", text: "a: :include:lists/a\n", lines: []int{1}, want: []string{"absolute path"}},
		{name: "empty pipe", text: "a: |\n", lines: []int{1}, want: []string{"empty command"}},
		{name: "colon in a target", text: "a: team: b@x;\n", lines: []int{1}, want: []string{"unexpected ':'"}},
		{name: "missing comma", text: "a: bob carol\n", lines: []int{1}, want: []string{"missing comma"}},
		{name: "control character", text: "a: b\x01c\n", lines: []int{1}, want: []string{"control character"}},
		{name: "unterminated quote", text: "a: \"b\n", lines: []int{1}, want: []string{"bad address"}},
		{name: "bad mailbox name", text: "a: \\b@c\n", lines: []int{1}, want: []string{"bad character"}},
		{name: "every bad line", text: "ok: x\na b: c\nd:\ne: f@\n  , g\nh i\nok2: y\n",
			lines: []int{2, 3, 4, 6}, want: []string{"must be quoted", "missing value", "bad address", "missing colon"},
			keep: map[string]string{"ok": "local:x@1", "e": "local:g@5", "ok2": "local:y@7"}},
		{name: "line too long", text: "a: " + strings.Repeat("b", maxLine) + "\nc: d\n", lines: []int{1}, want: []string{"longer than"},
			keep: map[string]string{"c": "local:d@2"}},
	}
	for _, tt := range tests {
		f, errs := Parse("/etc/aliases", strings.NewReader(tt.text))
		if len(errs) != len(tt.lines) {
			t.Errorf("%s: %d errors, want %d: %v", tt.name, len(errs), len(tt.lines), errs)
			continue
		}
		for i, err := range errs {
			var e *Error
			if !errors.As(err, &e) || e.Line != tt.lines[i] || e.File != "/etc/aliases" {
				t.Errorf("%s: error %d = %v, want line %d", tt.name, i, err, tt.lines[i])
			}
			prefix := fmt.Sprintf("/etc/aliases:%d: ", tt.lines[i])
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want[i]) {
				t.Errorf("%s: error %d = %q, want %q…%q", tt.name, i, err, prefix, tt.want[i])
			}
		}
		if tt.keep != nil {
			got := map[string]string{}
			for _, a := range f.Aliases {
				got[a.Name] = show(a.Targets)
			}
			if !reflect.DeepEqual(got, tt.keep) {
				t.Errorf("%s: kept %q, want %q", tt.name, got, tt.keep)
			}
		}
	}
}

func TestParseTargets(t *testing.T) {
	tests := []struct {
		name, text string
		want       string
		errLines   []int
	}{
		{name: "forward", text: "# my forward\nbob@remote.org\n\\alice\n\"|/usr/bin/procmail -f-\"\n/home/alice/mbox\n",
			want: `address:bob@remote.org@2 mailbox:alice@3 pipe:/usr/bin/procmail -f-@4 file:/home/alice/mbox@5`},
		{name: "include list", text: "alice, bob\n\n  # gone: dave\ncarol@x.org\n:include:/etc/more\n",
			want: "local:alice@1 local:bob@1 address:carol@x.org@4 include:/etc/more@5"},
		{name: "no continuation", text: "alice,\n  bob\n", want: "local:alice@1 local:bob@2"},
		{name: "bad lines", text: "alice\nbob@\ncarol: x\ndave\n",
			want: "local:alice@1 local:dave@4", errLines: []int{2, 3}},
	}
	for _, tt := range tests {
		got, errs := ParseTargets("/home/alice/.forward", strings.NewReader(tt.text))
		if show(got) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, show(got), tt.want)
		}
		var lines []int
		for _, err := range errs {
			var e *Error
			if errors.As(err, &e) {
				lines = append(lines, e.Line)
			}
		}
		if !reflect.DeepEqual(lines, tt.errLines) {
			t.Errorf("%s: errors %v, want lines %v", tt.name, errs, tt.errLines)
		}
	}
}

// checkTargets holds for every target any parser returns.
func checkTargets(t *testing.T, ts []Target, nlines int) {
	t.Helper()
	for _, tg := range ts {
		if tg.Kind < Local || tg.Kind > Append || tg.Value == "" || tg.Line < 1 || tg.Line > nlines {
			t.Fatalf("bad target %+v (file of %d lines)", tg, nlines)
		}
		if checkText(tg.Value) != nil {
			t.Fatalf("target %+v holds a control character", tg)
		}
		if tg.Kind == Include && !strings.HasPrefix(tg.Value, "/") {
			t.Fatalf("relative include %+v", tg)
		}
		if (tg.Kind == Local || tg.Kind == Mailbox) && strings.ToLower(tg.Value) != tg.Value {
			t.Fatalf("local name not folded: %+v", tg)
		}
	}
	// What the database stores reads back the same.
	back, err := decodeTargets(encodeTargets(ts))
	if err != nil || !reflect.DeepEqual(back, ts) && len(ts) > 0 {
		t.Fatalf("encode/decode: %v\n%+v\n%+v", err, ts, back)
	}
}

func checkErrors(t *testing.T, errs []error, nlines int) {
	t.Helper()
	for _, err := range errs {
		var e *Error
		if !errors.As(err, &e) || e.Line < 1 || e.Line > nlines {
			t.Fatalf("error without its line: %v (file of %d lines)", err, nlines)
		}
	}
}

func FuzzAliases(f *testing.F) {
	for _, s := range []string{
		"root: alice\n",
		"list: a,\n  b, \"|/bin/x, y\", /tmp/f,\n# c\n\t:include:/etc/l\nowner-list: \\bob\n",
		"\"john doe\": j\r\nbad line\n  orphan\na: b@\\\n c\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		nlines := strings.Count(text, "\n") + 1
		file, errs := Parse("aliases", strings.NewReader(text))
		checkErrors(t, errs, nlines)
		seen := map[string]bool{}
		for _, a := range file.Aliases {
			if a.Name == "" || strings.ToLower(a.Name) != a.Name || seen[a.Name] || len(a.Targets) == 0 {
				t.Fatalf("bad alias %+v", a)
			}
			seen[a.Name] = true
			checkTargets(t, a.Targets, nlines)
		}
		n, longest, total := file.Stats()
		if n != len(file.Aliases) || longest > total || total > len(text) {
			t.Fatalf("Stats = %d %d %d for %d bytes", n, longest, total, len(text))
		}
	})
}

func FuzzTargets(f *testing.F) {
	for _, s := range []string{
		"bob@remote.org\n\\alice\n\"|/usr/bin/procmail\"\n/home/alice/mbox\n",
		"alice, bob\n# c\n:include:/etc/more\nbad@\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		nlines := strings.Count(text, "\n") + 1
		ts, errs := ParseTargets(".forward", strings.NewReader(text))
		checkErrors(t, errs, nlines)
		checkTargets(t, ts, nlines)
	})
}
