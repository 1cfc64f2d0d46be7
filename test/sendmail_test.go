package test

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The exact argument strings of the programs that pipe mail into sendmail
// every day: each must queue the message with the right envelope.
func TestSendmailRealCallers(t *testing.T) {
	const host = "mx.test.example"
	tests := []struct {
		name      string
		args      []string
		stdin     string
		wantFrom  string
		wantRcpts []string
		wantHdr   map[string]string
		wantBody  string
	}{
		{
			name:      "cron",
			args:      strings.Fields("-FCronDaemon -i -odi -oem -oi -t -f root"),
			stdin:     "To: root\nSubject: Cron <root@box> run-parts /etc/cron.daily\n\n.\nreport line\n",
			wantFrom:  "root@" + host,
			wantRcpts: []string{"root@" + host},
			wantHdr:   map[string]string{"From": "CronDaemon <root@" + host + ">", "Subject": "Cron <root@box> run-parts /etc/cron.daily"},
			wantBody:  ".\nreport line\n",
		},
		{
			name:      "cron with 8BITMIME",
			args:      strings.Fields("-FCronDaemon -B8BITMIME -i -odi -oem -oi -t -f root"),
			stdin:     "To: admin@example.org\nContent-Type: text/plain; charset=UTF-8\n\nrésumé\n",
			wantFrom:  "root@" + host,
			wantRcpts: []string{"admin@example.org"},
			wantBody:  "résumé\n",
		},
		{
			name:      "PHP mail()",
			args:      []string{"-t", "-i"},
			stdin:     "To: Alice <alice@example.org>, bob@example.net\nCc: carol@example.com\nSubject: php\n\nbody\n",
			wantFrom:  "root@" + host,
			wantRcpts: []string{"alice@example.org", "bob@example.net", "carol@example.com"},
			wantBody:  "body\n",
		},
		{
			name:      "mutt",
			args:      []string{"-oem", "-oi", "--", "dave@example.org", "erin@example.org"},
			stdin:     "From: Root <root@" + host + ">\nTo: dave@example.org\nSubject: mutt\n\nhi\n",
			wantFrom:  "root@" + host,
			wantRcpts: []string{"dave@example.org", "erin@example.org"},
			wantHdr:   map[string]string{"From": "Root <root@" + host + ">"},
			wantBody:  "hi\n",
		},
		{
			name:      "git send-email",
			args:      []string{"-i", "-f", "dev@example.org", "maintainer@example.org", "list@example.org"},
			stdin:     "From: Dev <dev@example.org>\nSubject: [PATCH] fix\n\n---\n.\n..\n",
			wantFrom:  "dev@example.org",
			wantRcpts: []string{"maintainer@example.org", "list@example.org"},
			wantBody:  "---\n.\n..\n",
		},
		{
			name:      "plain script, dot ends the message",
			args:      []string{"ops@example.org"},
			stdin:     "Subject: disk\n\nfull\n.\nnot part of the message\n",
			wantFrom:  "root@" + host,
			wantRcpts: []string{"ops@example.org"},
			wantBody:  "full\n",
		},
		{
			name:      "null sender",
			args:      []string{"-f", "", "-i", "x@example.org"},
			stdin:     "Subject: n\n\nb\n",
			wantFrom:  "",
			wantRcpts: []string{"x@example.org"},
			wantBody:  "b\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSystem(t)
			r := s.run(tt.stdin, "sendmail", tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			envs := s.queue()
			if len(envs) != 1 {
				t.Fatalf("queue holds %d messages, want 1", len(envs))
			}
			env := envs[0]
			if env.From != tt.wantFrom || !slices.Equal(rcpts(env), tt.wantRcpts) {
				t.Errorf("envelope from <%s> to %v; want <%s> to %v", env.From, rcpts(env), tt.wantFrom, tt.wantRcpts)
			}
			if env.Proto != "local" || env.User != "root" && env.User == "" {
				t.Errorf("envelope proto %q user %q", env.Proto, env.User)
			}
			raw := s.message(env.ID)
			msg, err := mail.ReadMessage(strings.NewReader(raw))
			if err != nil {
				t.Fatalf("queued message does not parse: %v\n%s", err, raw)
			}
			for k, v := range tt.wantHdr {
				if got := msg.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for _, h := range []string{"Received", "Date", "Message-Id", "From"} {
				if msg.Header.Get(h) == "" {
					t.Errorf("no %s header in\n%s", h, raw)
				}
			}
			if rcv := msg.Header.Get("Received"); !strings.Contains(rcv, env.ID) || !strings.Contains(rcv, "from userid") {
				t.Errorf("Received: %q does not name the queue ID %s and the user", rcv, env.ID)
			}
			if !strings.HasPrefix(raw, "Received: ") {
				t.Errorf("Received is not the first header:\n%s", raw)
			}
			body := raw[strings.Index(raw, "\n\n")+2:]
			if body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestSendmailBccRemoved(t *testing.T) {
	s := newSystem(t)
	in := "From: a@example.org\nTo: b@example.org\nBcc: secret@example.org,\n  other@example.org\nSubject: s\n\nbody\n"
	if r := s.run(in, "sendmail", "-t", "-i"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	env := s.queue()[0]
	want := []string{"b@example.org", "secret@example.org", "other@example.org"}
	if !slices.Equal(rcpts(env), want) {
		t.Errorf("recipients %v, want %v", rcpts(env), want)
	}
	raw := s.message(env.ID)
	if strings.Contains(strings.ToLower(raw), "bcc") || strings.Contains(raw, "secret@") {
		t.Errorf("the queued copy still shows the Bcc:\n%s", raw)
	}
}

func TestSendmailRefusals(t *testing.T) {
	tests := []struct {
		name  string
		conf  []string
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{name: "unknown flag", args: []string{"-Z"}, code: 64, msg: "sendmail: "},
		{name: "unknown mode", args: []string{"-bz"}, code: 64, msg: "sendmail: "},
		{name: "no recipients", args: []string{"-i"}, stdin: "Subject: x\n\nb\n", code: 64, msg: "recipient"},
		{name: "-t without any", args: []string{"-t"}, stdin: "Subject: x\n\nb\n", code: 64, msg: "recipient"},
		{name: "bad address", args: []string{"-i", "a@b@"}, stdin: "x\n", code: 67, msg: "a@b@"},
		{name: "too big", conf: []string{"message_size_limit = 100"}, args: []string{"-i", "a@example.org"},
			stdin: strings.Repeat("x", 200) + "\n", code: 65, msg: "sendmail: "},
		{name: "bad config", conf: []string{"qeue_dir = /tmp"}, args: []string{"a@example.org"}, code: 78, msg: "yubin.conf:4: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSystem(t, tt.conf...)
			r := s.run(tt.stdin, "sendmail", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d stderr %q; want exit %d and one line containing %q", r.code, r.stderr, tt.code, tt.msg)
			}
			if envs, _, _ := s.queueList(); len(envs) != 0 {
				t.Errorf("refused message is in the queue")
			}
		})
	}
}

func TestMailq(t *testing.T) {
	s := newSystem(t)
	for _, prog := range [][]string{{"mailq"}, {"sendmail", "-bp"}} {
		r := s.run("", prog[0], prog[1:]...)
		if r.code != 0 || r.stdout != "Mail queue is empty\n" {
			t.Errorf("%v on an empty queue: exit %d, %q", prog, r.code, r.stdout)
		}
	}
	for i := 0; i < 2; i++ {
		if r := s.run(fmt.Sprintf("Subject: %d\n\n%s\n", i, strings.Repeat("x", 3000)), "sendmail", "-i", "-f", "alice@example.org", "bob@example.net", "carol@example.com"); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	envs := s.queue()
	for _, prog := range [][]string{{"mailq"}, {"sendmail", "-bp"}} {
		r := s.run("", prog[0], prog[1:]...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d %s", prog, r.code, r.stderr)
		}
		for _, env := range envs {
			if !strings.Contains(r.stdout, env.ID) {
				t.Errorf("%v does not list %s:\n%s", prog, env.ID, r.stdout)
			}
		}
		for _, want := range []string{"alice@example.org", "bob@example.net", "carol@example.com", "-- 6 Kbytes in 2 Requests.\n"} {
			if strings.Count(r.stdout, want) < 1 {
				t.Errorf("%v output lacks %q:\n%s", prog, want, r.stdout)
			}
		}
	}
	r := s.run("", "mailq", "--json")
	if lines := strings.Count(r.stdout, "\n"); r.code != 0 || lines != 2 || !strings.Contains(r.stdout, `"queue_id": "`+envs[0].ID+`"`) {
		t.Errorf("mailq --json: exit %d, %d lines:\n%s", r.code, lines, r.stdout)
	}
}

// Twenty sendmail processes at once: every one is acknowledged, every
// message is queued once and intact, no two share an ID.
func TestConcurrentEnqueue(t *testing.T) {
	s := newSystem(t)
	const n = 20
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.run(testMessage(i, 4096), "sendmail", "-i", "rcpt@example.org")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("sendmail %d: exit %d %s", i, r.code, r.stderr)
		}
	}
	envs := s.queue()
	if len(envs) != n {
		t.Fatalf("queue holds %d messages, want %d", len(envs), n)
	}
	seen := map[string]bool{}
	for _, env := range envs {
		tag := checkTestMessage(t, s.message(env.ID))
		if seen[tag] {
			t.Errorf("message %s queued twice", tag)
		}
		seen[tag] = true
	}
}
