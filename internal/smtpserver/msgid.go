package smtpserver

import (
	"bytes"
	"io"
	"strings"
)

// maxHeaderTap bounds what headerTap keeps: a Message-ID beyond 64 KiB of
// header is not looked for.
const maxHeaderTap = 64 << 10

// headerTap passes what is written on to w and keeps the message's header
// (up to the empty line that ends it, or maxHeaderTap bytes), in which
// messageID finds the Message-ID for the log. It sits behind lfWriter: the
// lines it sees end in LF.
type headerTap struct {
	w    io.Writer
	head []byte
	done bool
}

func (t *headerTap) Write(p []byte) (int, error) {
	if !t.done {
		from := max(len(t.head)-1, 0) // "\n\n" may span two writes
		t.head = append(t.head, p[:min(len(p), maxHeaderTap-len(t.head))]...)
		if i := bytes.Index(t.head[from:], []byte("\n\n")); i >= 0 {
			t.head, t.done = t.head[:from+i+1], true
		} else if len(t.head) == maxHeaderTap {
			t.done = true
		}
	}
	return t.w.Write(p)
}

// messageID returns the unfolded value of the header's Message-ID field
// (RFC 5322 §3.6.4), or "" when there is none.
func (t *headerTap) messageID() string {
	var value []string
	in := false // inside the Message-ID field, reading its continuation lines
	for _, l := range strings.Split(string(t.head), "\n") {
		if l != "" && (l[0] == ' ' || l[0] == '\t') {
			if in {
				value = append(value, strings.TrimSpace(l))
			}
			continue
		}
		if in || l == "" {
			break // the field, or the header, ended
		}
		name, v, ok := strings.Cut(l, ":")
		if in = ok && strings.EqualFold(strings.TrimRight(name, " \t"), "Message-ID"); in {
			value = []string{strings.TrimSpace(v)}
		}
	}
	return strings.TrimSpace(strings.Join(value, " "))
}
