package test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pop3System is a yubin system with virtual users (alice with a {PLAIN}
// secret, bob with a bcrypt hash of "correct horse") owned by whoever runs
// the test, and mail_dir under its directory.
type pop3System struct {
	*system
	mailRoot string
}

const pop3Bcrypt = "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2" // "correct horse"

func newPOP3System(t *testing.T, extra ...string) *pop3System {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed (scripts/test-deps installs it as root)")
	}
	dir := t.TempDir()
	ids := fmt.Sprintf(":%d:%d:%s", os.Getuid(), os.Getgid(), dir)
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:{PLAIN}tanstaaf"+ids+"\nbob:"+pop3Bcrypt+ids+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mailRoot := filepath.Join(dir, "mail")
	s := newSystem(t, append([]string{"users_file = " + users, "mail_dir = " + mailRoot + "/%u/Maildir"}, extra...)...)
	return &pop3System{system: s, mailRoot: mailRoot}
}

// mailbox writes messages into user's Maildir (sub/name → content) and
// returns the Maildir.
func (s *pop3System) mailbox(user string, files map[string]string) string {
	s.t.Helper()
	dir := filepath.Join(s.mailRoot, user, "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			s.t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	return dir
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPOP3d runs the standalone pop3d on 127.0.0.1 ports until the test
// ends and returns its port (and the implicit-TLS port when tlsPort).
func (s *pop3System) startPOP3d(tlsPort bool) (port, tport int) {
	s.t.Helper()
	port, tport, _ = s.startServer("pop3d", "pop3", tlsPort)
	return port, tport
}

// startServer runs the standalone mailbox server prog on 127.0.0.1 ports
// (proto_listen, and protos_listen when tlsPort) until the test ends and
// returns its ports and process.
func (s *pop3System) startServer(prog, proto string, tlsPort bool) (port, tport int, cmd *exec.Cmd) {
	s.t.Helper()
	port = freePort(s.t)
	lines := []string{fmt.Sprintf("%s_listen = 127.0.0.1:%d", proto, port)}
	if tlsPort {
		tport = freePort(s.t)
		lines = append(lines, fmt.Sprintf("%ss_listen = 127.0.0.1:%d", proto, tport))
	}
	f, err := os.OpenFile(s.conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	f.WriteString(strings.Join(lines, "\n") + "\n")
	f.Close()
	cmd = s.command(prog)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if stderr.Len() > 0 {
			s.t.Logf("%s stderr: %s", prog, stderr.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port, tport, cmd
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s does not listen: %v %s", prog, err, stderr.String())
		}
	}
}

// poplib runs a Python script with poplib imported, `port` and `argv` set,
// and returns what it printed as JSON.
func (s *pop3System) poplib(script string, port int, args ...string) map[string]any {
	s.t.Helper()
	return s.python("import poplib, hashlib\n", script, port, args...)
}

// python runs prelude and script with json, sys and ssl imported, `port`
// and `argv` (the rest) set from the command line and `out` = {}, and
// returns `out` as the script left it.
func (s *pop3System) python(prelude, script string, port int, args ...string) map[string]any {
	s.t.Helper()
	prelude = "import json, sys, ssl\nport = int(sys.argv[1])\nargv = sys.argv[2:]\nout = {}\n" + prelude
	cmd := exec.Command("python3", append([]string{"-c", prelude + script + "\nprint(json.dumps(out))", strconv.Itoa(port)}, args...)...)
	r := runCmd(s.t, cmd)
	if r.code != 0 {
		s.t.Fatalf("python: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	out := map[string]any{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		s.t.Fatalf("python output %q: %v", r.stdout, err)
	}
	return out
}

// wireForm is what RFC 1939 puts on the wire for a message file: CRLF line
// ends, dot-stuffing, the terminating line.
func wireForm(file string) string {
	file = strings.ReplaceAll(file, "\r\n", "\n")
	if file != "" && !strings.HasSuffix(file, "\n") {
		file += "\n"
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(file, "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, ".") {
			b.WriteString(".")
		}
		b.WriteString(strings.TrimSuffix(line, "\n") + "\r\n")
	}
	return b.String() + ".\r\n"
}

// Every command through poplib, and RETR byte for byte.
func TestPOP3EveryCommandWithPoplib(t *testing.T) {
	s := newPOP3System(t)
	msgs := map[string]string{
		"cur/1700000001.M1P1.h:2,": "Subject: one\n\nfirst line\n.starts with a dot\n..two dots\n.\nlast",
		"new/1700000002.M2P2.h":    "Subject: two\r\nX: crlf\r\n\r\nbody\r\n.\r\n",
		"new/1700000003.M3P3.h":    "Subject: three\n\n" + strings.Repeat("a line of text\n", 500),
	}
	dir := s.mailbox("bob", msgs)
	port, _ := s.startPOP3d(false)
	out := s.poplib(`
p = poplib.POP3("127.0.0.1", port)
out["welcome"] = p.getwelcome().decode()
out["capa"] = sorted(p.capa().keys())
out["user"] = p.user("bob").decode()
out["pass"] = p.pass_("correct horse").decode()
out["stat"] = list(p.stat())
resp, lines, _ = p.list()
out["list"] = [l.decode() for l in lines]
out["list2"] = p.list(2).decode()
resp, lines, _ = p.uidl()
out["uidl"] = [l.decode() for l in lines]
out["uidl3"] = p.uidl(3).decode()
out["retr"] = []
for i in (1, 2, 3):
    resp, lines, octets = p.retr(i)
    out["retr"].append({"resp": resp.decode(), "octets": octets, "text": "".join(l.decode() + "\r\n" for l in lines)})
# The raw wire bytes of RETR 1, stuffing and terminator included.
p._putcmd("RETR 1")
raw = p._getresp() and b""
while True:
    line = p.file.readline()
    raw += line
    if line == b".\r\n":
        break
out["raw1"] = raw.decode()
resp, lines, _ = p.top(3, 2)
out["top"] = [l.decode() for l in lines]
out["noop"] = p.noop().decode()
out["dele"] = p.dele(1).decode()
try:
    p.retr(1)
except poplib.error_proto as e:
    out["retr_deleted"] = str(e)
out["rset"] = p.rset().decode()
out["dele2"] = p.dele(2).decode()
try:
    p._shortcmd("FROB")
except poplib.error_proto as e:
    out["unknown"] = str(e)
out["quit"] = p.quit().decode()
`, port)

	if w := out["welcome"].(string); !strings.HasPrefix(w, "+OK "+s.hostname+" ") || !strings.Contains(w, "@"+s.hostname+">") {
		t.Errorf("greeting %q", w)
	}
	if capa := fmt.Sprint(out["capa"]); capa != "[AUTH-RESP-CODE IMPLEMENTATION PIPELINING RESP-CODES SASL TOP UIDL USER]" {
		t.Errorf("CAPA %s", capa)
	}
	var sizes []int
	for i, name := range []string{"cur/1700000001.M1P1.h:2,", "new/1700000002.M2P2.h", "new/1700000003.M3P3.h"} {
		wire := wireForm(msgs[name])
		r := out["retr"].([]any)[i].(map[string]any)
		unstuffed := strings.ReplaceAll("\r\n"+strings.TrimSuffix(wire, ".\r\n"), "\r\n.", "\r\n")[2:]
		if r["text"] != unstuffed {
			t.Errorf("RETR %d:\n%q\nwant\n%q", i+1, r["text"], unstuffed)
		}
		size := len(unstuffed)
		sizes = append(sizes, size)
		if r["resp"] != fmt.Sprintf("+OK %d octets", size) || int(r["octets"].(float64)) != size {
			t.Errorf("RETR %d: %v %v; want %d octets", i+1, r["resp"], r["octets"], size)
		}
		if i == 0 && out["raw1"] != wire {
			t.Errorf("RETR 1 on the wire:\n%q\nwant\n%q", out["raw1"], wire)
		}
	}
	total := sizes[0] + sizes[1] + sizes[2]
	if got := fmt.Sprint(out["stat"]); got != fmt.Sprintf("[3 %d]", total) {
		t.Errorf("STAT %s; want 3 %d", got, total)
	}
	if got := fmt.Sprint(out["list"]); got != fmt.Sprintf("[1 %d 2 %d 3 %d]", sizes[0], sizes[1], sizes[2]) {
		t.Errorf("LIST %s; sizes %v", got, sizes)
	}
	for key, want := range map[string]string{
		"pass":         "+OK bob has 3 messages",
		"list2":        fmt.Sprintf("+OK 2 %d", sizes[1]),
		"uidl3":        "+OK 3 1700000003.M3P3.h",
		"noop":         "+OK",
		"dele":         "+OK",
		"retr_deleted": "b'-ERR message 1 already deleted'",
		"rset":         "+OK maildrop has 3 messages",
		"unknown":      "b'-ERR unknown command'",
		"quit":         "+OK " + s.hostname + " POP3 server signing off (2 messages left)",
	} {
		if got, _ := out[key].(string); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q; want %q", key, got, want)
		}
	}
	if got := fmt.Sprint(out["uidl"]); got != "[1 1700000001.M1P1.h 2 1700000002.M2P2.h 3 1700000003.M3P3.h]" {
		t.Errorf("UIDL %s", got)
	}
	if got := fmt.Sprint(out["top"]); got != "[Subject: three  a line of text a line of text]" {
		t.Errorf("TOP 3 2: %s", got)
	}
	// QUIT removed message 2 and flagged the retrieved ones seen.
	names := lsDir(t, filepath.Join(dir, "cur"))
	if got := strings.Join(names, " "); got != "1700000001.M1P1.h:2,S 1700000003.M3P3.h:2,S" {
		t.Errorf("cur/ after QUIT: %s", got)
	}
}

// DELE then QUIT removes; DELE then a dropped connection keeps.
func TestPOP3DeleteNeedsQuit(t *testing.T) {
	s := newPOP3System(t)
	dir := s.mailbox("alice", map[string]string{"new/1.a.h": "S: 1\n\none\n", "new/2.b.h": "S: 2\n\ntwo\n"})
	port, _ := s.startPOP3d(false)
	s.poplib(`
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("tanstaaf")
p.dele(1); p.dele(2)
p.sock.close()  # dropped: no QUIT
`, port)
	time.Sleep(200 * time.Millisecond)
	if n := len(lsDir(t, filepath.Join(dir, "cur"))); n != 2 {
		t.Fatalf("after DELE and a drop: %d messages; want 2 kept", n)
	}
	out := s.poplib(`
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("tanstaaf")
out["stat"] = list(p.stat())
p.dele(1)
out["quit"] = p.quit().decode()
`, port)
	if fmt.Sprint(out["stat"]) != "[2 26]" || !strings.Contains(out["quit"].(string), "(1 messages left)") {
		t.Errorf("second session: %v", out)
	}
	if names := lsDir(t, filepath.Join(dir, "cur")); len(names) != 1 || !strings.HasPrefix(names[0], "2.b.h") {
		t.Errorf("after DELE 1 and QUIT: %q", names)
	}
}

// UIDL names a message the same in every session, whatever else arrives.
func TestPOP3UIDLStableAcrossSessions(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("alice", map[string]string{"new/1700000001.a.h": "S: 1\n\n", "new/1700000003.c.h": "S: 3\n\n",
		"new/1700000004." + strings.Repeat("x", 80) + ".h": "S: long\n\n"})
	port, _ := s.startPOP3d(false)
	script := `
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("tanstaaf")
out["uidl"] = [l.decode().split(" ", 1)[1] for l in p.uidl()[1]]
p.quit()
`
	first := s.poplib(script, port)["uidl"].([]any)
	s.mailbox("alice", map[string]string{"new/1700000002.b.h": "S: 2\n\n"})
	second := s.poplib(script, port)["uidl"].([]any)
	if len(first) != 3 || len(second) != 4 {
		t.Fatalf("UIDL listings %v then %v", first, second)
	}
	for _, u := range first {
		found := false
		for _, v := range second {
			found = found || u == v
		}
		if !found {
			t.Errorf("UIDL %v of the first session is gone in the second: %v", u, second)
		}
		if len(u.(string)) > 70 {
			t.Errorf("UIDL %v is longer than 70 characters", u)
		}
	}
}

func TestPOP3APOP(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("alice", map[string]string{"new/1.a.h": "S: 1\n\n"})
	port, _ := s.startPOP3d(false)
	out := s.poplib(`
p = poplib.POP3("127.0.0.1", port)
try:
    p.apop("alice", "wrong")
except poplib.error_proto as e:
    out["wrong"] = str(e)
out["ok"] = p.apop("alice", "tanstaaf").decode()
p.quit()
`, port)
	if out["wrong"] != "b'-ERR [AUTH] authentication failed'" || !strings.HasPrefix(out["ok"].(string), "+OK alice has 1 messages") {
		t.Errorf("APOP: %v", out)
	}
}

// pop3Certificate writes a self-signed certificate for 127.0.0.1 and its
// key into dir.
func pop3Certificate(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, key
}

// STLS then login, and implicit TLS on pop3s_listen, with poplib verifying
// the test certificate.
func TestPOP3STLSAndImplicitTLS(t *testing.T) {
	cert, key := pop3Certificate(t, t.TempDir())
	s := newPOP3System(t, "tls_cert = "+cert, "tls_key = "+key)
	s.mailbox("bob", map[string]string{"new/1.a.h": "S: 1\n\nsecret mail\n"})
	port, tport := s.startPOP3d(true)
	out := s.poplib(`
ctx = ssl.create_default_context(cafile=argv[0])
p = poplib.POP3("127.0.0.1", port)
out["capa"] = sorted(p.capa().keys())
out["stls"] = p.stls(context=ctx).decode()
out["cipher"] = p.sock.version()
out["capa_tls"] = sorted(p.capa().keys())
p.user("bob"); out["pass"] = p.pass_("correct horse").decode()
out["retr"] = [l.decode() for l in p.retr(1)[1]]
p.quit()
q = poplib.POP3_SSL("127.0.0.1", int(argv[1]), context=ctx)
out["implicit"] = q.sock.version()
q.user("bob"); out["pass_implicit"] = q.pass_("correct horse").decode()
q.quit()
`, port, cert, strconv.Itoa(tport))
	if !strings.Contains(fmt.Sprint(out["capa"]), "STLS") || strings.Contains(fmt.Sprint(out["capa_tls"]), "STLS") {
		t.Errorf("CAPA before and after STLS: %v / %v", out["capa"], out["capa_tls"])
	}
	if !strings.HasPrefix(out["stls"].(string), "+OK") || !strings.HasPrefix(out["cipher"].(string), "TLSv1.") {
		t.Errorf("STLS: %v %v", out["stls"], out["cipher"])
	}
	if !strings.HasPrefix(out["pass"].(string), "+OK bob has 1 messages") || fmt.Sprint(out["retr"]) != "[S: 1  secret mail]" {
		t.Errorf("after STLS: %v %v", out["pass"], out["retr"])
	}
	if !strings.HasPrefix(out["implicit"].(string), "TLSv1.") || !strings.HasPrefix(out["pass_implicit"].(string), "+OK bob") {
		t.Errorf("implicit TLS: %v %v", out["implicit"], out["pass_implicit"])
	}
}

// RFC 1939's exclusive-access lock: a second session is refused while the
// first is open, and gets in after it quits.
func TestPOP3ConcurrentSessionLocked(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("alice", map[string]string{"new/1.a.h": "S: 1\n\n"})
	port, _ := s.startPOP3d(false)
	out := s.poplib(`
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("tanstaaf")
q = poplib.POP3("127.0.0.1", port)
q.user("alice")
try:
    q.pass_("tanstaaf")
except poplib.error_proto as e:
    out["second"] = str(e)
p.quit()
r = poplib.POP3("127.0.0.1", port)
r.user("alice"); out["third"] = r.pass_("tanstaaf").decode()
r.quit()
`, port)
	if !strings.HasPrefix(out["second"].(string), "b'-ERR [IN-USE]") || !strings.HasPrefix(out["third"].(string), "+OK") {
		t.Errorf("lock: %v", out)
	}
}

// Names that could reach a path are no users, and the reply is the same
// as for a wrong password.
func TestPOP3PathTraversalNamesRefused(t *testing.T) {
	s := newPOP3System(t)
	port, _ := s.startPOP3d(false)
	names := []string{"../../etc", "..", "alice/../bob", "-alice", ".alice", "alice@../x", "alice@a/b", "alice\x01"}
	out := s.poplib(`
out["replies"] = []
for name in argv + ["bob"]:
    p = poplib.POP3("127.0.0.1", port)
    try:
        p._shortcmd("USER " + name)
        out["replies"].append(p._shortcmd("PASS tanstaaf").decode())
    except poplib.error_proto as e:
        out["replies"].append(str(e))
    p.close()
`, port, names...)
	replies := out["replies"].([]any)
	for i, r := range replies {
		want := "b'-ERR [AUTH] authentication failed'"
		if i < len(names) && names[i] == "alice\x01" {
			want = "b'-ERR control character in command'"
		}
		if r != want {
			t.Errorf("%q: %v; want %s", append(names, "bob")[i], r, want)
		}
	}
	if entries, _ := os.ReadDir(s.mailRoot); len(entries) != 0 {
		t.Errorf("refused names created %v under the mail root", entries)
	}
}

// 1,000 lines of garbage, each answered -ERR, then a normal session on the
// same connection, and another through poplib.
func TestPOP3GarbageThenSession(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("alice", map[string]string{"new/1.a.h": "S: 1\n\nhi\n"})
	port, _ := s.startPOP3d(false)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	go func() {
		w := bufio.NewWriter(c)
		for i := range 1000 {
			switch i % 4 {
			case 0:
				fmt.Fprintf(w, "GARBAGE %d\r\n", i)
			case 1:
				fmt.Fprintf(w, "\x00\xff\xfe%d\n", i)
			case 2:
				fmt.Fprintf(w, "%s\r\n", strings.Repeat("Z", 2000+i))
			case 3:
				fmt.Fprintf(w, "RETR %d\r\n", i)
			}
		}
		w.WriteString("USER alice\r\nPASS tanstaaf\r\nSTAT\r\nQUIT\r\n")
		w.Flush()
	}()
	for i := range 1000 {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "-ERR ") {
			t.Fatalf("garbage line %d: %q %v", i, line, err)
		}
	}
	var tail []string
	for range 4 {
		line, _ := r.ReadString('\n')
		tail = append(tail, strings.TrimSpace(line))
	}
	if got := strings.Join(tail, "|"); !strings.HasPrefix(got, "+OK send PASS|+OK alice has 1 messages (12 octets)|+OK 1 12|+OK") {
		t.Errorf("after the garbage: %s", got)
	}
	out := s.poplib(`
p = poplib.POP3("127.0.0.1", port)
p.user("alice"); p.pass_("tanstaaf")
out["stat"] = list(p.stat())
p.quit()
`, port)
	if fmt.Sprint(out["stat"]) != "[1 12]" {
		t.Errorf("poplib after the garbage: %v", out)
	}
}

// A system user (users_file empty) logs in with the password of
// /etc/shadow (yescrypt, as chpasswd writes it on Debian 12), and the
// session runs as that user: the files it makes in the Maildir are theirs.
func TestPOP3SystemUserSwitchesUID(t *testing.T) {
	uid, gid, _ := ensureUser(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	if out, err := exec.Command("sh", "-c", "echo "+testUser+":pop3-Secret | chpasswd").CombinedOutput(); err != nil {
		t.Skipf("chpasswd: %v %s", err, out)
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	mailRoot := filepath.Join(dir, "mail")
	s := &pop3System{system: newSystem(t, "mail_dir = "+mailRoot+"/%u/Maildir"), mailRoot: mailRoot}
	md := s.mailbox(testUser, map[string]string{"new/1.a.h": "S: 1\n\nfor the user\n"})
	os.Chmod(mailRoot, 0o755)
	filepath.Walk(filepath.Join(mailRoot, testUser), func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
	port, _ := s.startPOP3d(false)
	out := s.poplib(`
p = poplib.POP3("127.0.0.1", port)
p.user(argv[0])
try:
    p.pass_("wrong")
except poplib.error_proto as e:
    out["wrong"] = str(e)
p = poplib.POP3("127.0.0.1", port)
p.user(argv[0]); out["pass"] = p.pass_("pop3-Secret").decode()
out["retr"] = [l.decode() for l in p.retr(1)[1]]
p.quit()
p = poplib.POP3("127.0.0.1", port)
p.user("root")
try:
    p.pass_("anything")
except poplib.error_proto as e:
    out["root"] = str(e)
`, port, testUser)
	if out["wrong"] != "b'-ERR [AUTH] authentication failed'" || out["root"] != "b'-ERR [AUTH] authentication failed'" {
		t.Errorf("failed logins: %v %v", out["wrong"], out["root"])
	}
	if !strings.HasPrefix(out["pass"].(string), "+OK "+testUser+" has 1 messages") || fmt.Sprint(out["retr"]) != "[S: 1  for the user]" {
		t.Fatalf("session: %v", out)
	}
	for _, f := range []string{"yubin-pop3.lock", "yubin-pop3.sizes"} {
		st, err := os.Stat(filepath.Join(md, f))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != uid || int(sys.Gid) != gid {
			t.Errorf("%s is owned by %d:%d; want the user's %d:%d", f, sys.Uid, sys.Gid, uid, gid)
		}
	}
}

// A real inetd (Debian's openbsd-inetd) starts pop3d -i for each
// connection, and fetchmail downloads and deletes 100 messages through it.
func TestPOP3InetdFetchmail(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: inetd runs pop3d as root (scripts/test-deps installs openbsd-inetd and fetchmail)")
	}
	inetd, err1 := exec.LookPath("inetd")
	if err1 != nil {
		inetd, err1 = exec.LookPath("/usr/sbin/inetd")
	}
	fetchmail, err2 := exec.LookPath("fetchmail")
	if err1 != nil || err2 != nil {
		t.Skip("inetd or fetchmail is missing (scripts/test-deps installs openbsd-inetd and fetchmail as root)")
	}
	s := newPOP3System(t)
	files := map[string]string{}
	var want []string
	for i := range 100 {
		body := fmt.Sprintf("Subject: message %d\nMessage-ID: <%d@test>\n\nline one of %d\n.dot line\n", i, i, i)
		files[fmt.Sprintf("new/%d.M%dP1.h", 1700000000+i, i)] = body
		want = append(want, fmt.Sprintf("<%d@test>", i))
	}
	md := s.mailbox("alice", files)
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "inetd.conf")
	line := fmt.Sprintf("127.0.0.1:%d stream tcp nowait root %s pop3d -i -C %s\n", port, filepath.Join(binDir, "pop3d"), s.conf)
	os.WriteFile(conf, []byte(line), 0o644)
	cmd := exec.Command(inetd, "-i", conf)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inetd does not listen: %v %s", err, stderr.String())
		}
	}
	rc := filepath.Join(dir, "fetchmailrc")
	os.WriteFile(rc, []byte(fmt.Sprintf(`poll 127.0.0.1 with proto POP3 port %d and options no dns
  user "alice" there with password "tanstaaf" is "root" here
  options fetchall sslproto ''
`, port)), 0o600)
	bsmtp := filepath.Join(dir, "mail.bsmtp")
	fm := exec.Command(fetchmail, "-f", rc, "--nosyslog", "--bsmtp", bsmtp)
	fm.Env = append(os.Environ(), "FETCHMAILHOME="+dir, "HOME="+dir)
	r := runCmd(t, fm)
	if r.code != 0 {
		t.Fatalf("fetchmail: exit %d\n%s%s\ninetd: %s", r.code, r.stdout, r.stderr, stderr.String())
	}
	raw, err := os.ReadFile(bsmtp)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(string(raw), "\r\n", "\n")
	if n := strings.Count(got, "\nDATA\n"); n != 100 {
		t.Errorf("fetchmail wrote %d messages; want 100", n)
	}
	for _, id := range want {
		if !strings.Contains(got, "Message-ID: "+id+"\n") {
			t.Errorf("message %s is missing from fetchmail's output", id)
		}
	}
	if !strings.Contains(got, "\n..dot line\n") {
		t.Errorf("BSMTP output lacks the stuffed dot line")
	}
	if names := lsDir(t, filepath.Join(md, "cur")); len(names) != 0 {
		t.Errorf("%d messages left after fetchmail; want all deleted", len(names))
	}
}

// The standalone daemon keeps a session's process started ahead of the
// next connection (a spare): the client is greeted without waiting for a
// program to start, and a spare started before users_file changed starts
// again once its connection comes, so a user added a moment ago can log in.
// The spare goes with the daemon.
func TestPOP3SpareSession(t *testing.T) {
	s := newPOP3System(t)
	s.mailbox("bob", map[string]string{"new/1700000001.M1P1.h": "Subject: one\n\nbody\n"})
	s.mailbox("carol", map[string]string{"new/1700000002.M1P1.h": "Subject: two\n\nbody\n", "new/1700000003.M1P1.h": "Subject: three\n\nbody\n"})
	port, _, cmd := s.startServer("pop3d", "pop3", false)
	children := func() (pids []string) { // the daemon's, once they are done with
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", cmd.Process.Pid))
		for _, task := range tasks {
			b, _ := os.ReadFile(task)
			for _, pid := range strings.Fields(string(b)) {
				if st, _ := os.ReadFile("/proc/" + pid + "/stat"); !strings.Contains(string(st), ") Z ") {
					pids = append(pids, pid)
				}
			}
		}
		return pids
	}
	waitFor(t, 10*time.Second, func() bool { return len(children()) == 1 })
	spare := children()[0]
	stat := `
p = poplib.POP3("127.0.0.1", port)
p.user(argv[0]); p.pass_(argv[1])
out["stat"] = list(p.stat())
p.quit()
`
	if out := s.poplib(stat, port, "bob", "correct horse"); fmt.Sprint(out["stat"]) != "[1 22]" {
		t.Errorf("bob's STAT = %v, want [1 22]", out["stat"])
	}
	// The spare served bob; another waits, started before carol exists.
	waitFor(t, 10*time.Second, func() bool { c := children(); return len(c) == 1 && c[0] != spare })
	users := filepath.Join(filepath.Dir(s.mailRoot), "users")
	f, err := os.OpenFile(users, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "carol:{PLAIN}secret:%d:%d:%s\n", os.Getuid(), os.Getgid(), filepath.Dir(s.mailRoot))
	f.Close()
	if out := s.poplib(stat, port, "carol", "secret"); fmt.Sprint(out["stat"]) != "[2 46]" {
		t.Errorf("carol's STAT = %v, want [2 46]", out["stat"])
	}

	waitFor(t, 10*time.Second, func() bool { return len(children()) == 1 })
	spare = children()[0]
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	waitFor(t, 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + spare)
		return err != nil
	})
}
