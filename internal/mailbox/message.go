package mailbox

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// memLimit is how much of a message is held in memory; the whole of a larger
// one goes to an unlinked temp file.
const memLimit = 4 << 20

// Message is one message, read once and delivered to any number of users.
type Message struct {
	ID       string // the queue ID for the log; "" when the caller has none
	Sender   string // the envelope sender; "" is the null sender <>
	OrigRcpt string // the original recipient (deliver -a); "" when none

	head      []byte   // the input, or its first memLimit bytes when file is set
	file      *os.File // the whole input when larger than memLimit
	start     int64    // where the message starts (after a From_ line and its trace)
	end       int64    // the input's size
	eol       string   // the message's line ending: "\n", or "\r\n"
	delivered []string // its Delivered-To: addresses, lower-cased
}

// ReadMessage reads a message from r, up to EOF, and checks it (package
// comment, Malformed messages). A leading mbox "From sender date" line and
// the MTA's trace fields below it are dropped (package comment, What is
// stored); the sender and original recipient they name become Sender and
// OrigRcpt. limit > 0 refuses larger input with ErrTooBig. The caller closes
// the Message.
func ReadMessage(r io.Reader, limit int64) (*Message, error) {
	m := &Message{eol: "\n"}
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, memLimit)); err != nil {
		return nil, fmt.Errorf("reading the message: %w", err)
	}
	m.head = buf.Bytes()
	m.end = int64(len(m.head))
	if len(m.head) == memLimit {
		if err := m.spill(r); err != nil {
			m.Close()
			return nil, err
		}
	}
	if limit > 0 && m.end > limit {
		m.Close()
		return nil, fmt.Errorf("%w: more than %d bytes (message_size_limit)", ErrTooBig, limit)
	}
	if err := m.parse(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// spill moves the message to an unlinked temp file when r holds more.
func (m *Message) spill(r io.Reader) error {
	var one [1]byte
	n, err := io.ReadFull(r, one[:])
	if n == 0 {
		if err == io.EOF {
			return nil
		}
		return fmt.Errorf("reading the message: %w", err)
	}
	f, err := os.CreateTemp("", "yubin-deliver-")
	if err != nil {
		return fmt.Errorf("spooling the message: %w", err)
	}
	os.Remove(f.Name()) // nobody else needs it; it goes with the process
	m.file = f
	if _, err := f.Write(m.head); err != nil {
		return fmt.Errorf("spooling the message: %w", err)
	}
	if _, err := f.Write(one[:]); err != nil {
		return fmt.Errorf("spooling the message: %w", err)
	}
	n64, err := io.Copy(f, r)
	if err != nil {
		return fmt.Errorf("spooling the message: %w", err)
	}
	m.end += 1 + n64
	return nil
}

// Close releases the temp file of a large message.
func (m *Message) Close() error {
	if m.file != nil {
		return m.file.Close()
	}
	return nil
}

// Size is the size of the message as stored, without the header lines that
// delivery prepends and without a From_ line.
func (m *Message) Size() int64 { return m.end - m.start }

// body returns a new reader of the message.
func (m *Message) body() io.Reader {
	if m.file != nil {
		return io.NewSectionReader(m.file, m.start, m.Size())
	}
	return bytes.NewReader(m.head[m.start:])
}

// parse drops a From_ line, checks the header (what memory holds of it) and
// collects its Delivered-To: addresses.
func (m *Message) parse() error {
	h := m.head
	line := 1
	if bytes.HasPrefix(h, []byte("From ")) {
		from, _, _ := bytes.Cut(h, []byte("\n"))
		m.start = int64(len(from)) + 1
		h = h[min(len(h), len(from)+1):]
		line = 2
		if f := strings.Fields(string(from)); len(f) > 1 && f[1] != "MAILER-DAEMON" {
			m.Sender = f[1]
		}
		// The MTA that wrote the From_ line has prepended its own trace of
		// this delivery, which is written again here: take it over.
		for {
			name, value, size, lines := traceField(h)
			if size == 0 {
				break
			}
			switch name {
			case "return-path":
				m.Sender = Unbracket(value)
			case "x-original-to":
				m.OrigRcpt = Unbracket(value)
			}
			h, m.start, line = h[size:], m.start+int64(size), line+lines
		}
	}
	if m.Size() <= 0 {
		return fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if first, _, ok := bytes.Cut(h, []byte("\n")); ok && bytes.HasSuffix(first, []byte("\r")) {
		m.eol = "\r\n"
	}
	var err error
	m.delivered, err = checkHeader(h, line, m.file == nil)
	return err
}

// traceField returns the Return-Path:, X-Original-To: or Delivered-To:
// field at the start of h: its name in lower case, its value unfolded and
// trimmed, and its size in bytes and in lines; size 0 when h starts with
// anything else.
func traceField(h []byte) (name, value string, size, lines int) {
	colon := bytes.IndexByte(h, ':')
	if colon < 0 {
		return "", "", 0, 0
	}
	name = strings.ToLower(string(h[:colon]))
	if name != "return-path" && name != "x-original-to" && name != "delivered-to" {
		return "", "", 0, 0
	}
	var v strings.Builder
	for rest := h; ; lines++ {
		line, more, complete := bytes.Cut(rest, []byte("\n"))
		if !complete || lines > 0 && (len(line) == 0 || line[0] != ' ' && line[0] != '\t') {
			break
		}
		v.Write(bytes.TrimSuffix(line, []byte("\r")))
		size += len(line) + 1
		rest = more
	}
	if lines == 0 {
		return "", "", 0, 0
	}
	return name, strings.TrimSpace(v.String()[colon+1:]), size, lines
}

// Unbracket takes an address with or without its angle brackets.
func Unbracket(addr string) string {
	addr = strings.TrimSpace(addr)
	if len(addr) >= 2 && addr[0] == '<' && addr[len(addr)-1] == '>' {
		return addr[1 : len(addr)-1]
	}
	return addr
}

// checkHeader reads the header at the start of msg, whose first line is
// line n of the input: every line up to the first empty one (or the end)
// must be a field "Name: value", with a name of printable ASCII other than
// ":" (RFC 5322 §2.2), or a continuation of one (starting with a space or a
// tab); no line may hold a NUL. whole says msg is the whole message; if not,
// the check ends where msg does. It returns the addresses of the
// Delivered-To: fields, without angle brackets, lower-cased.
func checkHeader(msg []byte, n int, whole bool) ([]string, error) {
	var delivered []string
	var name string // of the field being read; "" before the first
	var value strings.Builder
	field := func() {
		if strings.EqualFold(name, "Delivered-To") {
			delivered = append(delivered, strings.ToLower(Unbracket(value.String())))
		}
		name = ""
		value.Reset()
	}
	for ; len(msg) > 0; n++ {
		line, rest, complete := bytes.Cut(msg, []byte("\n"))
		if !complete && !whole {
			break // the line goes on past what memory holds
		}
		msg = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // the end of the header
		}
		if bytes.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("%w: line %d of the header holds a NUL byte", ErrMalformed, n)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name == "" {
				return nil, fmt.Errorf("%w: line %d continues a header field, but none comes before it", ErrMalformed, n)
			}
			value.Write(line)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !fieldName(line[:colon]) {
			return nil, fmt.Errorf("%w: line %d is not a header field: %q", ErrMalformed, n, clip(line))
		}
		field()
		name = string(line[:colon])
		value.Write(line[colon+1:])
	}
	field()
	return delivered, nil
}

// fieldName reports whether b is a header field name: printable US-ASCII
// other than ":" (RFC 5322 §3.6.8, ftext).
func fieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return len(b) > 0
}

// clip shortens a line quoted in an error.
func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// loops reports whether the message already carries a Delivered-To: for
// addr (compared without regard to case), the sign of a mail loop.
func (m *Message) loops(addr string) bool {
	addr = strings.ToLower(addr)
	for _, a := range m.delivered {
		if a == addr {
			return true
		}
	}
	return false
}

// prefix is the header delivery prepends for the recipient addr, in the
// order of Postfix's local(8): Return-Path, X-Original-To (with -a),
// Delivered-To; with the message's own line ending.
func (m *Message) prefix(addr string) []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <" + m.Sender + ">" + m.eol)
	if m.OrigRcpt != "" {
		b.WriteString("X-Original-To: " + m.OrigRcpt + m.eol)
	}
	b.WriteString("Delivered-To: " + addr + m.eol)
	return b.Bytes()
}

// checkEnvelope refuses a sender or original recipient that would break the
// header it goes into.
func (m *Message) checkEnvelope() error {
	for _, v := range []struct{ what, addr string }{{"sender", m.Sender}, {"original recipient", m.OrigRcpt}} {
		if len(v.addr) > 998 || strings.ContainsFunc(v.addr, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("%w: bad %s address %q", ErrMalformed, v.what, v.addr)
		}
	}
	return nil
}
