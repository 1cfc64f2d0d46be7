package submit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"yubin/internal/address"
)

// ErrTooBig is returned by ReadMessage for a message over its size limit.
var ErrTooBig = errors.New("message too big")

// Message is a message as submitted: its header fields in order, each kept
// as the bytes read (folding included), and its body.
type Message struct {
	fields []field
	body   []byte
}

type field struct {
	name string // as written, without the white space before the colon
	raw  []byte // the whole field, continuation lines included, each line ending in LF
}

// ReadMessage reads one message from r as sendmail does:
//
//   - Lines end in LF, CRLF, or LF after any run of CRs; they are stored
//     with LF (Postfix's sendmail_fix_line_endings = always). A last line
//     without a line ending gets one.
//   - Unless ignoreDots, a line holding only "." ends the message; ".." at
//     the start of a line is kept as it is, as Postfix and Exim keep it
//     (sendmail 8's collect() takes the first dot off, unless -i).
//   - Leading mbox "From " lines, with any ">" before them, are dropped
//     (Postfix).
//   - The header is the run of fields from the first line up to an empty
//     line, or up to a line that is neither a field nor a continuation: that
//     line begins the body, and WriteTo puts the empty line before it
//     (Postfix). A field is a name of printable ASCII without ":", optional
//     white space (RFC 5322 §4.5.3 obs-optional) and ":"; a continuation
//     begins with a space or tab. A message whose first line is no field
//     is all body.
//   - A message of more than limit bytes (counted with LF line endings,
//     without the From_ and "." lines) is ErrTooBig; limit <= 0 is no
//     limit. The rest of the message is then read and discarded, so the
//     writer does not get SIGPIPE (Postfix's postdrop does the same).
func ReadMessage(r io.Reader, ignoreDots bool, limit int64) (*Message, error) {
	const (
		fromLines = iota
		header
		body
	)
	br := bufio.NewReaderSize(r, 64<<10)
	m := &Message{}
	state := fromLines
	var size int64
	var buf []byte
	for {
		guard := int64(math.MaxInt64)
		if limit > 0 {
			guard = limit - size + 1 // the "." line is longer than an empty one
		}
		line, ok, err := readLine(br, buf[:0], guard)
		if err == ErrTooBig {
			drain(br, ignoreDots, false)
			return nil, ErrTooBig
		}
		if err != nil {
			return nil, fmt.Errorf("read message: %w", err)
		}
		if !ok {
			break
		}
		buf = line
		if !ignoreDots && len(line) == 1 && line[0] == '.' {
			break
		}
		if state == fromLines {
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				continue
			}
			state = header
		}
		if size += int64(len(line)) + 1; limit > 0 && size > limit {
			drain(br, ignoreDots, true)
			return nil, ErrTooBig
		}
		if state == header {
			switch {
			case len(line) == 0:
				state = body
				continue
			case (line[0] == ' ' || line[0] == '\t') && len(m.fields) > 0:
				last := &m.fields[len(m.fields)-1]
				last.raw = append(append(last.raw, line...), '\n')
				continue
			}
			if name := fieldName(line); name != "" {
				m.fields = append(m.fields, field{name: name, raw: append(append([]byte(nil), line...), '\n')})
				continue
			}
			state = body
		}
		m.body = append(append(m.body, line...), '\n')
	}
	return m, nil
}

// readLine appends the next line of br to buf and returns it without its
// line ending: the LF and any CRs before it. ok is false at the end of the
// input. A line longer than max is ErrTooBig, and is not read to its end.
func readLine(br *bufio.Reader, buf []byte, max int64) ([]byte, bool, error) {
	cr := 0 // CRs read that end the line if LF or the end of input comes next
	ok := false
	for {
		chunk, err := br.ReadSlice('\n')
		text, lf := bytes.CutSuffix(chunk, []byte("\n"))
		content := bytes.TrimRight(text, "\r")
		if len(content) > 0 {
			if int64(len(buf)+cr+len(content)) > max {
				return nil, false, ErrTooBig
			}
			buf = append(buf, bytes.Repeat([]byte("\r"), cr)...)
			cr = 0
		}
		buf = append(buf, content...)
		cr += len(text) - len(content)
		ok = ok || len(chunk) > 0
		switch {
		case lf:
			return buf, true, nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return buf, ok, nil
		default:
			return nil, false, err
		}
	}
}

// drain reads br to the end of the message: the end of input, or unless
// ignoreDots a line with only "." (and CRs); bol says whether br is at the
// start of a line. Read errors end it too: the message is refused anyway.
func drain(br *bufio.Reader, ignoreDots, bol bool) {
	for {
		chunk, err := br.ReadSlice('\n')
		if bol && !ignoreDots && len(chunk) > 0 && chunk[0] == '.' &&
			len(bytes.TrimRight(bytes.TrimSuffix(chunk[1:], []byte("\n")), "\r")) == 0 {
			return
		}
		bol = bytes.HasSuffix(chunk, []byte("\n"))
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// fieldName returns the name of the header field that line begins, or ""
// when line begins none. Like Postfix's is_header(), it allows white space
// between the name and the colon.
func fieldName(line []byte) string {
	i := 0
	for i < len(line) && line[i] > ' ' && line[i] < 0x7f && line[i] != ':' {
		i++
	}
	j := i
	for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
		j++
	}
	if i == 0 || j == len(line) || line[j] != ':' {
		return ""
	}
	return string(line[:i])
}

// value is the field's unfolded value (RFC 5322 §2.2.3), without the white
// space around it.
func (f field) value() string {
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	return strings.Trim(strings.ReplaceAll(string(v), "\n", ""), " \t")
}

func (f field) is(names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(f.name, n) {
			return true
		}
	}
	return false
}

// Get returns the unfolded value of the first field called name, in any
// case, or "".
func (m *Message) Get(name string) string {
	for _, f := range m.fields {
		if f.is(name) {
			return f.value()
		}
	}
	return ""
}

// Has reports whether the header has a field called name, in any case.
func (m *Message) Has(name string) bool {
	for _, f := range m.fields {
		if f.is(name) {
			return true
		}
	}
	return false
}

// Recipients returns the addresses sendmail -t sends to: those in every To,
// Cc and Bcc field, or, when the message has a Resent-To, Resent-Cc or
// Resent-Bcc field, in those instead (RFC 5322 §3.6.6; sendmail 8 and
// Postfix). Each field is an address list as address.ParseList reads it, so
// bare local names such as "root" are allowed. Addresses are in header
// order, each once. A field that cannot be parsed is an error naming it.
func (m *Message) Recipients() ([]string, error) {
	names := []string{"To", "Cc", "Bcc"}
	for _, f := range m.fields {
		if f.is("Resent-To", "Resent-Cc", "Resent-Bcc") {
			names = []string{"Resent-To", "Resent-Cc", "Resent-Bcc"}
			break
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range m.fields {
		if !f.is(names...) {
			continue
		}
		addrs, err := address.ParseList(f.value())
		if err != nil {
			return nil, fmt.Errorf("%s header: %w", f.name, err)
		}
		for _, a := range addrs {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// RemoveBcc drops the Bcc and Resent-Bcc fields, continuation lines and all.
func (m *Message) RemoveBcc() {
	kept := m.fields[:0]
	for _, f := range m.fields {
		if !f.is("Bcc", "Resent-Bcc") {
			kept = append(kept, f)
		}
	}
	m.fields = kept
}

// Prepend adds the field "name: value" at the top of the header, where
// trace fields such as Received go (RFC 5322 §3.6.7). Line breaks in value
// are kept as folds: each LF is followed by the white space that begins
// the next line, or by a tab.
func (m *Message) Prepend(name, value string) {
	m.fields = append([]field{newField(name, value)}, m.fields...)
}

// AddIfMissing adds the field "name: value" at the end of the header unless
// the header has a field called name. value is folded as in Prepend.
func (m *Message) AddIfMissing(name, value string) {
	if !m.Has(name) {
		m.fields = append(m.fields, newField(name, value))
	}
}

func newField(name, value string) field {
	var b strings.Builder
	b.WriteString(name + ":")
	for i, l := range strings.Split(strings.ReplaceAll(value, "\r", ""), "\n") {
		switch {
		case i == 0 && l != "":
			b.WriteString(" " + l)
		case i == 0, strings.Trim(l, " \t") == "": // an empty line would end the header
		case l[0] == ' ' || l[0] == '\t':
			b.WriteString("\n" + l)
		default:
			b.WriteString("\n\t" + l)
		}
	}
	b.WriteByte('\n')
	return field{name: name, raw: []byte(b.String())}
}

// WriteTo writes the message with LF line endings: the header fields, an
// empty line and the body.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	var n int64
	write := func(p []byte) error {
		k, err := w.Write(p)
		n += int64(k)
		return err
	}
	for _, f := range m.fields {
		if err := write(f.raw); err != nil {
			return n, err
		}
	}
	if err := write([]byte("\n")); err != nil {
		return n, err
	}
	return n, write(m.body)
}

// Has8Bit reports whether the header or the body holds a byte above 127:
// the message needs 8BITMIME (RFC 6152) or SMTPUTF8 (RFC 6531) to be relayed
// as it is.
func (m *Message) Has8Bit() bool {
	for _, f := range m.fields {
		if has8Bit(f.raw) {
			return true
		}
	}
	return has8Bit(m.body)
}

func has8Bit(p []byte) bool {
	for _, c := range p {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
