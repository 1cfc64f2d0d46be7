package mailq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"yubin/internal/queue"
)

// The listing is in local time; every test runs in a zone 9 hours east of
// UTC, so the envelopes' UTC times show converted and the output is the same
// on every machine.
func TestMain(m *testing.M) {
	time.Local = time.FixedZone("JST", 9*60*60)
	os.Exit(m.Run())
}

// arrival is Wed Mar  5 10:02:03 2025 in the test zone.
var arrival = time.Date(2025, 3, 5, 1, 2, 3, 0, time.UTC)

func rcpt(addr string, s queue.State, reply string) *queue.Recipient {
	r := &queue.Recipient{Addr: addr, State: s}
	if s != queue.Pending {
		r.Attempts = 1
		r.LastAttempt = arrival.Add(time.Minute)
		r.LastReply = reply
	}
	return r
}

func msg(id, from string, size int64, rcpts ...*queue.Recipient) *queue.Envelope {
	return &queue.Envelope{V: 1, ID: id, From: from, Size: size, Arrival: arrival, Recipients: rcpts}
}

const heading = "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n"

func TestWrite(t *testing.T) {
	const longReason = "host mx.example.com[192.0.2.1] said: 452 4.2.2 <carol@example.com>: Mailbox full, try again later (in reply to RCPT TO command)"
	active := msg("0SZ3G5H0002XYZ", "alice@example.org", 512, rcpt("bob@example.net", queue.Pending, ""))
	active.Active = true
	tests := []struct {
		name string
		envs []*queue.Envelope
		want string
	}{
		{
			name: "empty queue",
			envs: nil,
			want: "Mail queue is empty\n",
		},
		{
			name: "one pending recipient",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 2301, rcpt("bob@example.net", queue.Pending, "")),
			},
			want: heading +
				"0SZ3G5H0001ABC        2301 Wed Mar  5 10:02:03 alice@example.org\n" +
				"                                               bob@example.net\n" +
				"\n" +
				"-- 2 Kbytes in 1 Request.\n",
		},
		{
			name: "only deferred and pending shown, deferred with its reason",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 4096,
					rcpt("done@example.net", queue.Delivered, "250 2.0.0 ok"),
					rcpt("later@example.com", queue.Deferred, "connect to mx.example.com[192.0.2.1]:25: Connection timed out"),
					rcpt("gone@example.net", queue.Failed, "550 5.1.1 no such user"),
					rcpt("new@example.org", queue.Pending, "")),
			},
			want: heading +
				"0SZ3G5H0001ABC        4096 Wed Mar  5 10:02:03 alice@example.org\n" +
				"                                               new@example.org\n" +
				"               (connect to mx.example.com[192.0.2.1]:25: Connection timed out)\n" +
				"                                               later@example.com\n" +
				"\n" +
				"-- 4 Kbytes in 1 Request.\n",
		},
		{
			name: "same reason shown once, a reply-less deferral after it marked",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 100,
					rcpt("a@example.com", queue.Deferred, "451 4.3.0 try later"),
					rcpt("b@example.com", queue.Deferred, "451 4.3.0 try later"),
					rcpt("c@example.com", queue.Deferred, "421 4.4.2\r\n  timeout")),
			},
			want: heading +
				"0SZ3G5H0001ABC         100 Wed Mar  5 10:02:03 alice@example.org\n" +
				"                                                         (451 4.3.0 try later)\n" +
				"                                               a@example.com\n" +
				"                                               b@example.com\n" +
				"                                                           (421 4.4.2 timeout)\n" +
				"                                               c@example.com\n" +
				"\n" +
				"-- 0 Kbytes in 1 Request.\n",
		},
		{
			// Postfix pads to column 78 and never folds: a longer reason
			// starts at column 1 and runs on, still one "(...)" line.
			name: "long reason not folded",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 1024,
					rcpt("carol@example.com", queue.Deferred, longReason)),
			},
			want: heading +
				"0SZ3G5H0001ABC        1024 Wed Mar  5 10:02:03 alice@example.org\n" +
				"(" + longReason + ")\n" +
				"                                               carol@example.com\n" +
				"\n" +
				"-- 1 Kbytes in 1 Request.\n",
		},
		{
			name: "reason of exactly 76 characters ends at column 78",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 1024,
					rcpt("carol@example.com", queue.Deferred, strings.Repeat("x", 76))),
			},
			want: heading +
				"0SZ3G5H0001ABC        1024 Wed Mar  5 10:02:03 alice@example.org\n" +
				"(" + strings.Repeat("x", 76) + ")\n" +
				"                                               carol@example.com\n" +
				"\n" +
				"-- 1 Kbytes in 1 Request.\n",
		},
		{
			name: "null sender is MAILER-DAEMON",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "", 3000, rcpt("bob@example.net", queue.Pending, "")),
			},
			want: heading +
				"0SZ3G5H0001ABC        3000 Wed Mar  5 10:02:03 MAILER-DAEMON\n" +
				"                                               bob@example.net\n" +
				"\n" +
				"-- 2 Kbytes in 1 Request.\n",
		},
		{
			name: "active message starred",
			envs: []*queue.Envelope{active},
			want: heading +
				"0SZ3G5H0002XYZ*        512 Wed Mar  5 10:02:03 alice@example.org\n" +
				"                                               bob@example.net\n" +
				"\n" +
				"-- 0 Kbytes in 1 Request.\n",
		},
		{
			// 1023 + 1025 = 2048: the sum is rounded down, not each message.
			name: "two messages, Requests plural, Kbytes of the sum",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 1023, rcpt("bob@example.net", queue.Pending, "")),
				msg("0SZ3G5H0002XYZ", "", 1025, rcpt("carol@example.com", queue.Deferred, "451 4.7.1 greylisted")),
			},
			want: heading +
				"0SZ3G5H0001ABC        1023 Wed Mar  5 10:02:03 alice@example.org\n" +
				"                                               bob@example.net\n" +
				"\n" +
				"0SZ3G5H0002XYZ        1025 Wed Mar  5 10:02:03 MAILER-DAEMON\n" +
				"                                                        (451 4.7.1 greylisted)\n" +
				"                                               carol@example.com\n" +
				"\n" +
				"-- 2 Kbytes in 2 Requests.\n",
		},
		{
			name: "Kbytes rounded down",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "alice@example.org", 2047, rcpt("bob@example.net", queue.Pending, "")),
			},
			want: heading +
				"0SZ3G5H0001ABC        2047 Wed Mar  5 10:02:03 alice@example.org\n" +
				"                                               bob@example.net\n" +
				"\n" +
				"-- 1 Kbytes in 1 Request.\n",
		},
		{
			name: "control characters cannot forge lines",
			envs: []*queue.Envelope{
				msg("0SZ3G5H0001ABC", "a\x1b[2J@example.org", 10, rcpt("b\n-- 0 Kbytes@example.net", queue.Pending, "")),
			},
			want: heading +
				"0SZ3G5H0001ABC          10 Wed Mar  5 10:02:03 a?[2J@example.org\n" +
				"                                               b?-- 0 Kbytes@example.net\n" +
				"\n" +
				"-- 0 Kbytes in 1 Request.\n",
		},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := Write(&b, tc.envs); err != nil {
			t.Errorf("%s: Write: %v", tc.name, err)
			continue
		}
		if got := b.String(); got != tc.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.name, got, tc.want)
		}
	}
}

// The columns line up: every value starts under its heading.
func TestWriteColumnsAligned(t *testing.T) {
	var b bytes.Buffer
	env := msg("0SZ3G5H0001ABC", "alice@example.org", 26214400, rcpt("bob@example.net", queue.Pending, ""))
	env.Active = true
	if err := Write(&b, []*queue.Envelope{env}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	head, data, rc := lines[0], lines[1], lines[2]
	for _, col := range []struct {
		heading, value string
	}{
		{"--Sender/Recipient", "alice@example.org"},
		{"---Arrival Time", "Wed Mar  5"},
	} {
		if h, v := strings.Index(head, col.heading), strings.Index(data, col.value); h != v {
			t.Errorf("%q at column %d, its heading %q at %d", col.value, v, col.heading, h)
		}
	}
	// The size is right-aligned under "--Size--".
	if h, v := strings.Index(head, "--Size--")+len("--Size--"), strings.Index(data, "26214400")+len("26214400"); h != v {
		t.Errorf("size ends at column %d, its heading at %d", v, h)
	}
	if h, v := strings.Index(head, "--Sender"), strings.Index(rc, "bob@"); h != v {
		t.Errorf("recipient at column %d, heading at %d", v, h)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	envs := []*queue.Envelope{msg("0SZ3G5H0001ABC", "a@x", 1, rcpt("b@y", queue.Pending, ""))}
	if err := Write(failWriter{}, envs); err == nil {
		t.Error("Write to a failing writer: nil error")
	}
	if err := WriteJSON(failWriter{}, envs); err == nil {
		t.Error("WriteJSON to a failing writer: nil error")
	}
	if err := Write(failWriter{}, nil); err == nil {
		t.Error("Write of an empty queue to a failing writer: nil error")
	}
}

// jsonMessage is postqueue -j's object, as a script reads it.
type jsonMessage struct {
	QueueName    string `json:"queue_name"`
	QueueID      string `json:"queue_id"`
	ArrivalTime  int64  `json:"arrival_time"`
	MessageSize  int64  `json:"message_size"`
	ForcedExpire *bool  `json:"forced_expire"`
	Sender       string `json:"sender"`
	Recipients   []struct {
		Address     string  `json:"address"`
		DelayReason *string `json:"delay_reason"`
		DelayWarned *int64  `json:"delay_warned"`
	} `json:"recipients"`
}

func TestWriteJSON(t *testing.T) {
	fresh := msg("0SZ3G5H0001ABC", "alice@example.org", 2301, rcpt("bob@example.net", queue.Pending, ""))
	deferred := msg("0SZ3G5H0002XYZ", "", 1025,
		rcpt("done@example.net", queue.Delivered, "250 ok"),
		rcpt("carol@example.com", queue.Deferred, "451 4.7.1 \"greylisted\" <retry>\r\n  later"),
		rcpt("dave@example.com", queue.Pending, ""))
	active := msg("0SZ3G5H0003QRS", "x@example.org", 7, rcpt("y@example.net", queue.Pending, ""))
	active.Active = true
	deferred.Recipients[1].Warned = arrival.Add(4 * time.Hour)

	var b bytes.Buffer
	if err := WriteJSON(&b, []*queue.Envelope{fresh, deferred, active}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), b.String())
	}
	// Postfix's spacing, so a grep written for postqueue -j matches too.
	if want := `{"queue_name": "incoming", "queue_id": "0SZ3G5H0001ABC", "arrival_time": 1741136523, "message_size": 2301, "forced_expire": false, "sender": "alice@example.org", "recipients": [{"address": "bob@example.net"}]}`; lines[0] != want {
		t.Errorf("line 1:\n got %s\nwant %s", lines[0], want)
	}

	var got []jsonMessage
	for i, l := range lines {
		var m jsonMessage
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, l)
		}
		got = append(got, m)
	}

	for i, want := range []struct{ name, id, sender string }{
		{"incoming", "0SZ3G5H0001ABC", "alice@example.org"},
		{"deferred", "0SZ3G5H0002XYZ", "MAILER-DAEMON"},
		{"active", "0SZ3G5H0003QRS", "x@example.org"},
	} {
		m := got[i]
		if m.QueueName != want.name || m.QueueID != want.id || m.Sender != want.sender {
			t.Errorf("line %d: queue_name=%q queue_id=%q sender=%q, want %q %q %q",
				i+1, m.QueueName, m.QueueID, m.Sender, want.name, want.id, want.sender)
		}
		if m.ArrivalTime != arrival.Unix() {
			t.Errorf("line %d: arrival_time=%d, want %d", i+1, m.ArrivalTime, arrival.Unix())
		}
		if m.ForcedExpire == nil || *m.ForcedExpire {
			t.Errorf("line %d: forced_expire=%v, want false", i+1, m.ForcedExpire)
		}
	}
	if got[1].MessageSize != 1025 {
		t.Errorf("message_size=%d, want 1025", got[1].MessageSize)
	}
	rs := got[1].Recipients
	if len(rs) != 2 {
		t.Fatalf("deferred message: %d recipients, want 2 (the delivered one left out): %+v", len(rs), rs)
	}
	if rs[0].Address != "dave@example.com" || rs[0].DelayReason != nil || rs[0].DelayWarned != nil {
		t.Errorf("recipient 1: %q reason %v warned %v, want dave@example.com without delay_reason or delay_warned", rs[0].Address, rs[0].DelayReason, rs[0].DelayWarned)
	}
	if w := rs[1].DelayWarned; w == nil || *w != arrival.Add(4*time.Hour).Unix() {
		t.Errorf("recipient 2: delay_warned %v, want %d", w, arrival.Add(4*time.Hour).Unix())
	}
	wantReason := `451 4.7.1 "greylisted" <retry> later`
	if rs[1].Address != "carol@example.com" || rs[1].DelayReason == nil || *rs[1].DelayReason != wantReason {
		t.Errorf("recipient 2: %q reason %v, want carol@example.com with %q", rs[1].Address, rs[1].DelayReason, wantReason)
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, nil); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("empty queue: got %q, want no output", b.String())
	}
}

// TestListDeferred goes through a real queue: what the runner records with
// Mark is what mailq shows.
func TestListDeferred(t *testing.T) {
	q := queue.New(t.TempDir() + "/q")
	if err := q.Init(-1, -1); err != nil {
		t.Fatal(err)
	}
	w, err := q.Create(&queue.Envelope{
		From:       "alice@example.org",
		Recipients: []*queue.Recipient{{Addr: "bob@example.net"}, {Addr: "carol@example.com"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: test\n\nhello\n"
	w.WriteString(body)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	id := w.ID()

	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	const reply = "host mx.example.com[127.0.0.1] said: 451 4.3.0 mailbox busy"
	if err := m.Mark(1, queue.Deferred, reply, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	// While the lock is held the message is being delivered: "*".
	envs, problems, err := q.List()
	if err != nil || len(problems) > 0 {
		t.Fatalf("List: %v %v", problems, err)
	}
	var b bytes.Buffer
	if err := Write(&b, envs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "\n"+id+"*  ") {
		t.Errorf("locked message not shown active:\n%s", b.String())
	}
	m.Close()

	envs, problems, err = q.List()
	if err != nil || len(problems) > 0 {
		t.Fatalf("List: %v %v", problems, err)
	}
	b.Reset()
	if err := Write(&b, envs); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"\n" + id + "   ",
		fmt.Sprintf(" %d ", len(body)), // the size is the message without the envelope line
		" alice@example.org\n",
		"\n                                               bob@example.net\n",
		"(" + reply + ")\n                                               carol@example.com\n",
		"-- 0 Kbytes in 1 Request.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}

	b.Reset()
	if err := WriteJSON(&b, envs); err != nil {
		t.Fatal(err)
	}
	var j jsonMessage
	if err := json.Unmarshal(b.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	if j.QueueName != "deferred" || j.QueueID != id || len(j.Recipients) != 2 ||
		j.Recipients[1].DelayReason == nil || *j.Recipients[1].DelayReason != reply {
		t.Errorf("JSON of the deferred message: %s", b.String())
	}
}
