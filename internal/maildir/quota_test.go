package maildir

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseQuota(t *testing.T) {
	tests := []struct {
		in      string
		want    Quota
		wantErr bool
	}{
		{"10000000S,1000C", Quota{Bytes: 10000000, Count: 1000}, false},
		{"1000C,10000000S", Quota{Bytes: 10000000, Count: 1000}, false},
		{"5000S", Quota{Bytes: 5000}, false},
		{"20C", Quota{Count: 20}, false},
		{" 5000S , 20C ", Quota{Bytes: 5000, Count: 20}, false},
		{"0S,0C", Quota{}, false},
		{"", Quota{}, false},
		{"5000", Quota{}, true},
		{"5000X", Quota{}, true},
		{"S", Quota{}, true},
		{"-5S", Quota{}, true},
		{"5000S,", Quota{}, true},
		{"lots", Quota{}, true},
	}
	for _, tt := range tests {
		got, err := parseQuota(tt.in)
		if (err != nil) != tt.wantErr || err == nil && got != tt.want {
			t.Errorf("parseQuota(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSizeFile(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		quota      Quota
		usage      Usage
		wantBroken bool
		wantErr    bool
	}{
		{"definition only", "1000S\n", Quota{Bytes: 1000}, Usage{}, false, false},
		{"deltas", "1000S,10C\n100 1\n250 1\n", Quota{1000, 10}, Usage{350, 2}, false, false},
		{"removal", "1000S\n100 1\n250 1\n-100 -1\n", Quota{Bytes: 1000}, Usage{250, 1}, false, false},
		{"Courier padding", "1000S\n       100 1\n  250      1\n", Quota{Bytes: 1000}, Usage{350, 2}, false, false},
		{"line cut by a crash", "1000S\n100 1\n25", Quota{Bytes: 1000}, Usage{100, 1}, true, false},
		{"garbage line", "1000S\n100 1\nhello\n", Quota{Bytes: 1000}, Usage{100, 1}, true, false},
		{"three fields", "1000S\n100 1 2\n", Quota{Bytes: 1000}, Usage{}, true, false},
		{"empty file", "", Quota{}, Usage{}, false, false},
		{"bad definition", "much\n100 1\n", Quota{}, Usage{}, false, true},
	}
	for _, tt := range tests {
		q, u, broken, err := parseSizeFile([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if q != tt.quota || u != tt.usage || broken != tt.wantBroken {
			t.Errorf("%s: got %+v %+v broken=%v; want %+v %+v broken=%v", tt.name, q, u, broken, tt.quota, tt.usage, tt.wantBroken)
		}
	}
}

func TestQuotaAllows(t *testing.T) {
	tests := []struct {
		name  string
		quota Quota
		usage Usage
		size  int64
		want  bool
	}{
		{"no limits", Quota{}, Usage{1 << 40, 1 << 20}, 1 << 30, true},
		{"room", Quota{Bytes: 1000}, Usage{Bytes: 400}, 500, true},
		{"exactly full", Quota{Bytes: 1000}, Usage{Bytes: 400}, 600, true},
		{"one byte over", Quota{Bytes: 1000}, Usage{Bytes: 401}, 600, false},
		{"already over", Quota{Bytes: 1000}, Usage{Bytes: 1200}, 1, false},
		{"count room", Quota{Count: 3}, Usage{Count: 2}, 1 << 20, true},
		{"count full", Quota{Count: 3}, Usage{Count: 3}, 1, false},
		{"bytes fine, count full", Quota{Bytes: 1 << 20, Count: 1}, Usage{Bytes: 10, Count: 1}, 10, false},
		{"count fine, bytes full", Quota{Bytes: 100, Count: 10}, Usage{Bytes: 90, Count: 1}, 11, false},
	}
	for _, tt := range tests {
		if got := tt.quota.allows(tt.usage, tt.size); got != tt.want {
			t.Errorf("%s: allows = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNameSize(t *testing.T) {
	tests := []struct {
		name string
		size int64
		ok   bool
	}{
		{"1700000000.M1P2Q3R0011223344556677.host,S=4312", 4312, true},
		{"1700000000.M1P2Q3R0011223344556677.host,S=4312:2,S", 4312, true},
		{"1700000000.M1P2.host,S=4312,W=4400:2,RS", 4312, true},
		{"1700000000.P2.host", 0, false},
		{"1700000000.P2.host,S=abc", 0, false},
	}
	for _, tt := range tests {
		size, ok := nameSize(tt.name)
		if size != tt.size || ok != tt.ok {
			t.Errorf("nameSize(%q) = %d, %v; want %d, %v", tt.name, size, ok, tt.size, tt.ok)
		}
	}
}

func writeSizeFile(t *testing.T, d Dir, content string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(d.path("maildirsize"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(-age)
	os.Chtimes(d.path("maildirsize"), when, when)
}

func readSizeFile(t *testing.T, d Dir) string {
	t.Helper()
	b, err := os.ReadFile(d.path("maildirsize"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeliverWithinQuotaAddsTheDelivery(t *testing.T) {
	d := newMaildir(t)
	writeSizeFile(t, d, "1000S\n", 0)
	msg := strings.Repeat("x", 600)
	if _, err := deliverString(d, msg); err != nil {
		t.Fatal(err)
	}
	if got := readSizeFile(t, d); got != "1000S\n600 1\n" {
		t.Errorf("maildirsize = %q", got)
	}
	_, err := deliverString(d, msg)
	var qe *QuotaError
	if !errors.Is(err, ErrOverQuota) || !errors.As(err, &qe) {
		t.Fatalf("second message: err = %v, want a QuotaError", err)
	}
	for _, want := range []string{"over quota", "600 bytes used of 1000", "the message has 600", "maildirsize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if n := len(ls(t, d, "new")); n != 1 {
		t.Errorf("new/ holds %d messages, want 1", n)
	}
	if left := ls(t, d, "tmp"); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

func TestDeliverCountQuota(t *testing.T) {
	d := newMaildir(t)
	writeSizeFile(t, d, "0S,2C\n", 0)
	for i := range 3 {
		_, err := deliverString(d, "Subject: x\n\n")
		if wantErr := i == 2; (err != nil) != wantErr {
			t.Fatalf("message %d: err = %v", i+1, err)
		}
		if i == 2 && !strings.Contains(err.Error(), "it holds 2 messages, the limit is 2") {
			t.Errorf("err = %v", err)
		}
	}
}

// maildirsize is only a cache: it is recalculated from the files when it
// is broken, large, or stale and refusing.
func TestQuotaRecalculation(t *testing.T) {
	tests := []struct {
		name    string
		content string
		age     time.Duration
		want    bool // delivered
	}{
		{"stale and refusing", "1000S\n5000 3\n", time.Hour, true},
		{"fresh and refusing", "1000S\n5000 3\n", time.Minute, false},
		{"broken line", "1000S\n5000 x\n", 0, true},
		{"cut line", "1000S\n5000 3\n12", 0, true},
		{"large", "1000S\n" + strings.Repeat("0 0\n", 1300) + "5000 3\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newMaildir(t)
			// What is really there: 300 bytes in new/ (named), 200 in cur/
			// (stat), 100 in a folder, and 10,000 in .Trash, which does
			// not count.
			os.WriteFile(d.path("new", "1.M1P1.h,S=300"), nil, 0o600)
			os.WriteFile(d.path("cur", "2.M2P2.h:2,S"), make([]byte, 200), 0o600)
			for _, f := range []string{".Sent", ".Trash"} {
				if err := Dir(d.path(f)).Init(); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(d.path(".Sent", "cur", "3.M3P3.h,S=100:2,S"), nil, 0o600)
			os.WriteFile(d.path(".Trash", "cur", "4.M4P4.h,S=10000:2,S"), nil, 0o600)
			writeSizeFile(t, d, tt.content, tt.age)

			_, err := deliverString(d, strings.Repeat("y", 100))
			if (err == nil) != tt.want {
				t.Fatalf("delivered = %v (%v), want %v", err == nil, err, tt.want)
			}
			if tt.want {
				if got := readSizeFile(t, d); got != "1000S\n600 3\n100 1\n" {
					t.Errorf("maildirsize after recalculation = %q", got)
				}
			}
		})
	}
}

func TestBadQuotaDefinitionIsAnError(t *testing.T) {
	d := newMaildir(t)
	writeSizeFile(t, d, "plenty\n", 0)
	_, err := deliverString(d, "Subject: x\n\n")
	if err == nil || errors.Is(err, ErrOverQuota) || !strings.Contains(err.Error(), "maildirsize:1: bad quota definition") {
		t.Fatalf("err = %v", err)
	}
	if n := len(ls(t, d, "new")); n != 0 {
		t.Errorf("new/ holds %d", n)
	}
}
