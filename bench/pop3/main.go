// Command pop3 measures pop3d on a 10,000-message Maildir with Python's
// poplib, the client of ../shared/bench/reference.sh, and prints each figure
// beside Dovecot's from the same script. See bench/README.md.
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

// client is reference.sh's pop3(): one RETR per round trip, as poplib does.
const client = `
import poplib, sys, time
port, u, pw, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
t = time.perf_counter(); p = poplib.POP3("127.0.0.1", port); p.user(u); p.pass_(pw)
print("USER+PASS\t%.3f s" % (time.perf_counter() - t)); t = time.perf_counter()
c, _ = p.stat(); ul = p.uidl()[1]
print("STAT+UIDL\t%.3f s (%d msgs, %d uidls)" % (time.perf_counter() - t, c, len(ul)))
t = time.perf_counter(); b = 0
for i in range(1, n + 1): b += sum(len(x) + 2 for x in p.retr(i)[1])
s = time.perf_counter() - t
print("RETR x%d\t%.3f s  %.0f msg/s  %.1f MB/s" % (n, s, n / s, b / s / 1e6)); p.quit()
`

func main() {
	msgs := flag.Int("msgs", 10000, "messages in the Maildir")
	size := flag.Int("size", 4096, "message size in bytes")
	n := flag.Int("n", 1000, "RETRs, one per round trip")
	base := flag.String("dir", "/var/tmp/yubin-bench-pop3", "where the Maildir is generated once and reused")
	pop3d := flag.String("pop3d", "bin/pop3d", "the pop3d binary")
	dovStat := flag.String("dovecot-stat", "0.04-0.05 s", "Dovecot's STAT+UIDL (reference.sh, same mailbox size)")
	dovRetr := flag.String("dovecot-retr", "7400-9300 msg/s", "Dovecot's RETR rate (reference.sh)")
	flag.Parse()

	md := filepath.Join(*base, fmt.Sprintf("mail/bench/Maildir-%d-%d", *msgs, *size))
	if err := generate(md, *msgs, *size); err != nil {
		fail(err)
	}
	port, stop, err := figure.StartServer(*pop3d, "pop3_listen", *base, filepath.Dir(md), filepath.Base(md))
	if err != nil {
		fail(err)
	}
	defer stop()
	fmt.Printf("pop3d on a %d-message Maildir of %d-byte messages (LF line ends, names with ,S= only), poplib client\n", *msgs, *size)
	for _, run := range []string{"cold", "warm"} {
		if run == "cold" {
			os.Remove(filepath.Join(md, "yubin-pop3.sizes")) // sizes counted again
		}
		out, err := exec.Command("python3", "-c", client, fmt.Sprint(port), "bench", "bench", fmt.Sprint(*n)).CombinedOutput()
		if err != nil {
			fail(fmt.Errorf("poplib: %v\n%s", err, out))
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(line, "\t")
			limit := ""
			switch {
			case strings.HasPrefix(k, "STAT+UIDL"):
				limit = "Dovecot " + *dovStat
			case strings.HasPrefix(k, "RETR"):
				limit = "Dovecot " + *dovRetr
			}
			fmt.Printf("%-5s %-10s %-42s %s\n", run, k, v, limit)
		}
	}
}

// generate writes the Maildir once: reference.sh's kind of text messages,
// 90 % of them seen, in cur/.
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
	words := strings.Fields("the quarterly report meeting budget review of plans for next week with team notes and figures draft")
	for i := range msgs {
		var b strings.Builder
		fmt.Fprintf(&b, "From: Ann Smith <ann@example.org>\nTo: Bob Ito <bob@example.net>\nSubject: message %d\n"+
			"Date: %s\nMessage-ID: <%d@bench.test>\n\n", i, time.Unix(1700000000+60*int64(i), 0).UTC().Format(time.RFC1123Z), i)
		for b.Len() < size-80 {
			for range 10 {
				b.WriteString(words[r.IntN(len(words))] + " ")
			}
			b.WriteString("\n")
		}
		flags := ""
		if r.IntN(10) < 9 {
			flags = "S"
		}
		name := fmt.Sprintf("%d.M%dP1.bench,S=%d:2,%s", 1700000000+i, i, b.Len(), flags)
		if err := os.WriteFile(filepath.Join(md, "cur", name), []byte(b.String()), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/pop3:", err)
	os.Exit(1)
}
