// Command imap measures imapd on a generated Maildir (10,000 messages by
// default, -msgs 100000 for the larger one) with Python's imaplib, the
// client and the steps of ../shared/bench/reference.sh's imap(), and prints
// each figure beside Dovecot's from that script. See bench/README.md.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"yubin/bench/internal/figure"
)

// client is reference.sh's imap(): a first LOGIN+SELECT (cold: the server's
// index removed before), a second (warm), FETCH 1:* (FLAGS RFC822.SIZE)
// twice, UID SEARCH HEADER Subject twice, BODY.PEEK[] in one command and
// one per round trip.
const client = `
import imaplib, sys, time
port, u, pw, n, word = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def out(k, v): print(f"{k}\t{v}", flush=True)
t = time.perf_counter(); m = imaplib.IMAP4("127.0.0.1", port); m.login(u, pw); typ, d = m.select("INBOX")
out("login+select cold (first)", f"{time.perf_counter() - t:.3f} s ({d[0].decode()} msgs)"); m.logout()
t = time.perf_counter(); m = imaplib.IMAP4("127.0.0.1", port); m.login(u, pw); m.select("INBOX")
out("login+select warm (second)", f"{time.perf_counter() - t:.3f} s")
for k in ("1st", "2nd"):
    t = time.perf_counter(); typ, d = m.fetch("1:*", "(FLAGS RFC822.SIZE)"); assert typ == "OK"
    out(f"FETCH 1:* (FLAGS RFC822.SIZE) {k}", f"{time.perf_counter() - t:.3f} s ({len(d)} lines)")
for k in ("1st", "2nd"):
    t = time.perf_counter(); typ, d = m.uid("SEARCH", "HEADER", "Subject", word); assert typ == "OK"
    out(f"UID SEARCH HEADER Subject {k}", f"{time.perf_counter() - t:.3f} s ({len(d[0].split())} hits)")
t = time.perf_counter(); typ, d = m.fetch(f"1:{n}", "(BODY.PEEK[])"); s = time.perf_counter() - t
b = sum(len(x[1]) for x in d if isinstance(x, tuple))
out(f"FETCH 1:{n} BODY.PEEK[] (one cmd)", f"{s:.3f} s  {n / s:.0f} msg/s  {b / s / 1e6:.1f} MB/s")
t = time.perf_counter(); b = 0
for i in range(n + 1, 2 * n + 1): typ, d = m.fetch(str(i), "(BODY.PEEK[])"); b += len(d[0][1])
s = time.perf_counter() - t
out(f"FETCH i BODY.PEEK[] x{n} (1 per cmd)", f"{s:.3f} s  {n / s:.0f} msg/s  {b / s / 1e6:.1f} MB/s"); m.logout()
`

// dovecot are the figures of issue 8 and ../shared/bench/README.md:
// Dovecot 2.3 on 100,000 messages with the same client (±30 %).
var dovecot = map[string]string{
	"login+select cold": "Dovecot (100k) 0.5-0.6 s",
	"login+select warm": "Dovecot (100k) 0.06 s",
	"FETCH 1:*":         "Dovecot (100k) 0.43-0.67 s",
	"UID SEARCH":        "Dovecot (100k) 1st 3 s, 2nd 0.17 s",
	"FETCH i":           "Dovecot 8,000 msg/s",
}

func main() {
	msgs := flag.Int("msgs", 10000, "messages in the Maildir")
	size := flag.Int("size", 4096, "message size in bytes")
	n := flag.Int("n", 1000, "BODY.PEEK[] fetches of each kind")
	base := flag.String("dir", "/var/tmp/yubin-bench-imap", "where the Maildir is generated once and reused")
	imapd := flag.String("imapd", "bin/imapd", "the imapd binary")
	flag.Parse()

	md := filepath.Join(*base, fmt.Sprintf("mail/bench/Maildir-%d-%d", *msgs, *size))
	if err := generate(md, *msgs, *size); err != nil {
		fail(err)
	}
	// Cold: the UID list (the index) is gone, as reference.sh removes
	// Dovecot's; every message gets its UID again.
	for _, f := range []string{"yubin-uidlist", "yubin-uidlist.lock"} {
		os.Remove(filepath.Join(md, f))
	}
	port, stop, err := figure.StartServer(*imapd, "imap_listen", *base, filepath.Dir(md), filepath.Base(md))
	if err != nil {
		fail(err)
	}
	defer stop()
	fmt.Printf("imapd on a %d-message Maildir of %d-byte messages (LF line ends, names with ,S= and ,W=), imaplib client\n", *msgs, *size)
	out, err := exec.Command("python3", "-c", client, fmt.Sprint(port), "bench", "bench", fmt.Sprint(*n), "quarterly").CombinedOutput()
	if err != nil {
		fail(fmt.Errorf("imaplib: %v\n%s", err, out))
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		limit := ""
		for prefix, d := range dovecot {
			if strings.HasPrefix(k, prefix) {
				limit = d
			}
		}
		fmt.Printf("%-36s %-40s %s\n", k, v, limit)
	}
}

// generate writes the Maildir once: reference.sh's kind of text messages,
// 90 % of them seen, one in 100 with the search word in its Subject, all
// in cur/ with Dovecot-style ,S= and ,W= sizes.
func generate(md string, msgs, size int) error {
	if names, err := os.ReadDir(filepath.Join(md, "cur")); err == nil && len(names) == msgs {
		return nil
	}
	os.RemoveAll(md)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			return err
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("alpha report meeting invoice update release budget status review draft notice team " +
		"project server backup order payment travel lunch quota disk network cluster weekly urgent fwd re")
	pick := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = words[r.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	for i := range msgs {
		subj := pick(2 + r.IntN(5))
		if i%100 == 7 {
			subj += " quarterly"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Return-Path: <x%d@example.org>\nFrom: Ann Smith <ann.smith@example.org>\nTo: Bob Ito <bob.ito@example.net>\n"+
			"Subject: %s\nDate: %s\nMessage-ID: <%d@bench.test>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n",
			i%97, subj, time.Unix(1700000000+60*int64(i), 0).UTC().Format(time.RFC1123Z), i)
		for b.Len() < size-80 {
			b.WriteString(pick(6+r.IntN(7)) + "\n")
		}
		m := b.String()
		flags := ""
		if r.IntN(10) < 9 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%dP1.bench,S=%d,W=%d:2,%s", 1700000000+i, i, len(m), len(m)+strings.Count(m, "\n"), flags)
		if err := os.WriteFile(filepath.Join(md, "cur", name), []byte(m), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/imap:", err)
	os.Exit(1)
}
