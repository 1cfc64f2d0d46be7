package dsn

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// A bounce is an RFC 6522 multipart/report whose parts a MIME parser finds
// in order, with the delivery-status fields of RFC 3464 and the original
// message or only its header, as RET and the size limit say.
func TestBounceStructure(t *testing.T) {
	original := "From: a@x.example\nTo: b@y.example\nSubject: hello\n\n" + strings.Repeat("body line\n", 10)
	tests := []struct {
		name     string
		ret      string
		max      int64
		lastType string
		wantBody bool
	}{
		{"whole message", "", 0, "message/rfc822", true},
		{"RET=HDRS", "HDRS", 0, "text/rfc822-headers", false},
		{"over the size limit", "FULL", 20, "text/rfc822-headers", false},
	}
	for _, tt := range tests {
		r := &Report{
			Kind: Failure, ReportingMTA: "mx.test.example", QueueID: "0ABC", Sender: "a@x.example",
			Arrival: time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC), Ret: tt.ret, ID: "0ABD",
			Recipients: []Recipient{{Final: "b@y.example", Original: "rfc822;B@y.example", Status: "5.1.1",
				RemoteMTA: "mx.y.example", Diagnostic: "550 5.1.1 <b@y.example>: no such user", DiagType: "smtp"}},
			Original: strings.NewReader(original), Size: int64(len(original)), MaxReturn: tt.max,
			Date: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC),
		}
		var buf bytes.Buffer
		if err := r.Write(&buf); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		msg, err := mail.ReadMessage(&buf)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := msg.Header.Get("To"); !strings.Contains(got, "a@x.example") {
			t.Errorf("%s: To: %q", tt.name, got)
		}
		mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
			t.Fatalf("%s: Content-Type %q", tt.name, msg.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(msg.Body, params["boundary"])
		var types []string
		var status, last string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			b, _ := io.ReadAll(p)
			types = append(types, strings.Split(p.Header.Get("Content-Type"), ";")[0])
			switch types[len(types)-1] {
			case "message/delivery-status":
				status = string(b)
			case tt.lastType:
				last = string(b)
			}
		}
		if strings.Join(types, " ") != "text/plain message/delivery-status "+tt.lastType {
			t.Errorf("%s: parts %v", tt.name, types)
		}
		// The per-recipient block of message/delivery-status is a header.
		blocks := strings.SplitN(strings.ReplaceAll(status, "\r\n", "\n"), "\n\n", 2)
		if len(blocks) != 2 {
			t.Fatalf("%s: delivery-status:\n%s", tt.name, status)
		}
		rcpt, err := textproto.NewReader(bufio.NewReader(strings.NewReader(blocks[1]))).ReadMIMEHeader()
		if err != nil && err != io.EOF {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for k, v := range map[string]string{"Final-Recipient": "rfc822;b@y.example", "Original-Recipient": "rfc822;B@y.example",
			"Action": "failed", "Status": "5.1.1", "Remote-Mta": "dns;mx.y.example"} {
			if got := strings.ReplaceAll(rcpt.Get(k), " ", ""); got != v {
				t.Errorf("%s: %s: %q, want %q", tt.name, k, rcpt.Get(k), v)
			}
		}
		if !strings.Contains(rcpt.Get("Diagnostic-Code"), "550 5.1.1") {
			t.Errorf("%s: Diagnostic-Code %q", tt.name, rcpt.Get("Diagnostic-Code"))
		}
		if !strings.Contains(last, "Subject: hello") || strings.Contains(last, "body line") != tt.wantBody {
			t.Errorf("%s: returned part:\n%s", tt.name, last)
		}
	}
}
