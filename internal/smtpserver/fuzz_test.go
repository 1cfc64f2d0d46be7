package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"yubin/internal/queue"
)

// replyLine is what every line the server writes must look like.
var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession feeds whatever a client might send, commands and messages,
// to a whole session (go-smtp's parser, wireConn and our Session): every
// reply is well formed, nothing panics (go-smtp would answer 421 4.0.0
// Internal server error), and the session ends when the input does.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@local.test>\r\nDATA\r\nSubject: s\r\n\r\n..x\r\n.\r\nQUIT\r\n",
		"HELO x\nMAIL form: a@b\nRCPT TO:<c@local.test>\nDATA\n.\n",
		"EHLO x\r\nMAIL FROM:<> SIZE=10 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=a+2Bb\r\nRCPT TO:<c@local.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+40d\r\nBDAT 5 LAST\r\nabcde",
		"EHLO x\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=\r\nAUTH LOGIN\r\nYm9i\r\n*\r\nSTARTTLS\r\n",
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<\"u@r\"@local.test>\r\nRCPT TO:<u%r@local.test>\r\nRCPT TO:<@local.test:u@r>\r\nRCPT TO:<r!u@local.test>\r\n",
		"\x00\xff\r\nEH\x00LO\r\nVRFY\r\nEXPN x\r\nHELP\r\nTURN\r\nNOOP\r\nRSET\r\n",
	} {
		f.Add([]byte(seed))
	}
	q := queue.New(filepath.Join(f.TempDir(), "queue"))
	if err := q.Init(-1, -1); err != nil {
		f.Fatal(err)
	}
	opts := Options{
		Hostname:        "mx.test",
		Queue:           q,
		LocalDomains:    []string{"local.test"},
		MaxMessageBytes: 4096,
		MaxRecipients:   5,
		Submission:      true,
		LookupName:      func(context.Context, string) string { return "" },
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := ServeStdio(context.Background(), opts, bytes.NewReader(in), &out); err != nil {
			t.Fatalf("ServeStdio: %v", err)
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			l := strings.TrimSuffix(sc.Text(), "\r")
			if !replyLine.MatchString(l) {
				t.Fatalf("reply line %q", l)
			}
			if strings.Contains(l, "Internal server error") {
				t.Fatalf("panic in the session: %q", l)
			}
		}
	})
}

// FuzzRecipientPolicy: whatever the address, a client that may not relay
// gets only local recipients without a relay trick, and nothing panics.
func FuzzRecipientPolicy(f *testing.F) {
	for _, seed := range []string{
		"bob@local.test", "bob@LOCAL.TEST.", "bob@elsewhere.example", "u%r@local.test",
		"u@r@local.test", "r!u@local.test", "u@[192.0.2.1]", "@local.test", "local.test", "",
	} {
		f.Add(seed)
	}
	o := &Options{LocalDomains: []string{"local.test"}, RelayNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	stranger := &session{client: client{addr: "198.51.100.7"}}
	trusted := &session{client: client{addr: "192.0.2.7"}}
	f.Fuzz(func(t *testing.T, to string) {
		err := stranger.checkRcpt(o, to)
		at := strings.LastIndexByte(to, '@')
		if err == nil && (at < 0 || !isLocalDomain(to[at+1:], o.LocalDomains) || strings.ContainsAny(to[:at], "@%!")) {
			t.Fatalf("stranger may send to %q", to)
		}
		if err := trusted.checkRcpt(o, to); err == nil && at < 0 {
			t.Fatalf("accepted %q without a domain", to)
		}
	})
}
