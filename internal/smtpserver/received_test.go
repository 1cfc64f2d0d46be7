package smtpserver

import (
	"strings"
	"testing"
	"time"

	"yubin/internal/queue"
)

func TestReceived(t *testing.T) {
	date := time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("JST", 9*3600))
	rcpts := func(addrs ...string) []*queue.Recipient {
		var r []*queue.Recipient
		for _, a := range addrs {
			r = append(r, &queue.Recipient{Addr: a})
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		env   queue.Envelope
		local *LocalUser
		want  string
	}{
		{
			name: "network, one recipient",
			env:  queue.Envelope{ID: "0ABC", Helo: "c.example", Client: "192.0.2.1", Proto: "ESMTP", Recipients: rcpts("b@local.test")},
			want: "Received: from c.example (unknown [192.0.2.1])\n\tby mx.test (yubin) with ESMTP id 0ABC\n\tfor <b@local.test>; Tue, 4 Mar 2025 05:06:07 +0900 (JST)\n",
		},
		{
			name: "network, named client, IPv6, two recipients",
			env:  queue.Envelope{ID: "0ABC", Helo: "c.example", Client: "2001:db8::1", ClientName: "c.example", Proto: "SMTP", Recipients: rcpts("a@x", "b@y")},
			want: "Received: from c.example (c.example [IPv6:2001:db8::1])\n\tby mx.test (yubin) with SMTP id 0ABC;\n\tTue, 4 Mar 2025 05:06:07 +0900 (JST)\n",
		},
		{
			name:  "local submission",
			env:   queue.Envelope{ID: "0ABC", Helo: "ws.test", Proto: "ESMTP", User: "alice", Recipients: rcpts("bob@example.org")},
			local: &LocalUser{Name: "alice", UID: 1000},
			want:  "Received: from ws.test (localhost [127.0.0.1])\n\tby mx.test (yubin, from userid 1000) with ESMTP id 0ABC\n\tfor <bob@example.org>; Tue, 4 Mar 2025 05:06:07 +0900 (JST)\n",
		},
		{
			name: "quoted local part, hostile HELO",
			env:  queue.Envelope{ID: "0ABC", Helo: "evil\r\nX-Injected:\x00yes", Client: "192.0.2.1", Proto: "ESMTP", Recipients: rcpts(`john "j" doe@local.test`)},
			want: "Received: from evil??X-Injected:?yes (unknown [192.0.2.1])\n\tby mx.test (yubin) with ESMTP id 0ABC\n\tfor <\"john \\\"j\\\" doe\"@local.test>; Tue, 4 Mar 2025 05:06:07 +0900 (JST)\n",
		},
	} {
		tc.env.Arrival = date
		if got := received(&tc.env, "mx.test", tc.local); got != tc.want {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

func TestQuoteLocal(t *testing.T) {
	for in, want := range map[string]string{
		"bob@x":                  "bob@x",
		"first.last@x":           "first.last@x",
		"b!#$%&'*+-/=?^_`{|}~@x": "b!#$%&'*+-/=?^_`{|}~@x",
		"bøb@x":                  "bøb@x",
		"john doe@x":             `"john doe"@x`,
		"a@b@x":                  `"a@b"@x`,
		".bob@x":                 `".bob"@x`,
		"bo..b@x":                `"bo..b"@x`,
		`a\b@x`:                  `"a\\b"@x`,
		"@x":                     `""@x`,
		"nodomain":               "nodomain",
	} {
		if got := quoteLocal(in); got != want {
			t.Errorf("quoteLocal(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever a client puts in HELO or an address, the Received header is
// one header field: the first line starts it, each other line is a
// continuation, and there is no CR, no control character.
func FuzzReceived(f *testing.F) {
	f.Add("client.test", "bob@local.test", "")
	f.Add("evil\r\nX: y", "john doe@x", "a@b")
	f.Add("\t", "\"@\x00", "")
	f.Fuzz(func(t *testing.T, helo, rcpt1, rcpt2 string) {
		env := &queue.Envelope{ID: "0ABC", Helo: helo, Client: "192.0.2.1", Proto: "ESMTP", Arrival: testNow,
			Recipients: []*queue.Recipient{{Addr: rcpt1}}}
		if rcpt2 != "" {
			env.Recipients = append(env.Recipients, &queue.Recipient{Addr: rcpt2})
		}
		h := received(env, "mx.test", nil)
		if !strings.HasPrefix(h, "Received: from ") || !strings.HasSuffix(h, "\n") {
			t.Fatalf("header %q", h)
		}
		for i, l := range strings.Split(strings.TrimSuffix(h, "\n"), "\n") {
			if i > 0 && !strings.HasPrefix(l, "\t") {
				t.Fatalf("line %d of %q is not a continuation", i, h)
			}
			for _, r := range l {
				if r < 0x20 && r != '\t' || r == 0x7f {
					t.Fatalf("control character %U in %q", r, h)
				}
			}
		}
	})
}
