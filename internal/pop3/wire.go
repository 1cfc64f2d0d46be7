package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// wireBuffer is the longest piece of a line handled at once (a variable so
// that tests can break lines anywhere).
var wireBuffer = 64 << 10

// writeMessage sends a message file as the body of a multi-line response
// (RFC 1939 §3): every line ends in CRLF whatever the file holds (LF, CRLF;
// a last line without an end gets one, a last lone CR becomes CRLF), a
// line starting with "." gets another, and "." CRLF ends it. bodyLines < 0
// sends everything (RETR); otherwise the header, the empty line and that
// many lines of the body (TOP). It returns the octets sent, stuffing and
// terminator excluded: with bodyLines < 0, the size LIST gave.
func writeMessage(w *bufio.Writer, r io.Reader, bodyLines int) (int64, error) {
	return writeMessageBuffered(w, bufio.NewReaderSize(r, wireBuffer), bodyLines)
}

// writeMessageBuffered is writeMessage reading through br, which a
// session reuses from one message to the next.
func writeMessageBuffered(w *bufio.Writer, br *bufio.Reader, bodyLines int) (int64, error) {
	var sent int64
	inHeader := true
	lineStart := true  // the next byte starts a line
	pendingCR := false // a line longer than the buffer broke after a CR
	for {
		if !inHeader && bodyLines >= 0 && lineStart {
			if bodyLines == 0 {
				break
			}
			bodyLines--
		}
		chunk, err := br.ReadSlice('\n')
		if pendingCR && len(chunk) > 0 && chunk[0] != '\n' {
			w.WriteByte('\r') // not a line end after all
			sent++
		}
		if len(chunk) == 0 && !lineStart && err == io.EOF {
			w.WriteString("\r\n")
			sent += 2
		}
		pendingCR = false
		if len(chunk) > 0 {
			if lineStart && chunk[0] == '.' {
				w.WriteByte('.')
			}
			ended := chunk[len(chunk)-1] == '\n'
			content := chunk
			switch {
			case ended, err == io.EOF:
				content = bytes.TrimSuffix(bytes.TrimSuffix(chunk, []byte{'\n'}), []byte{'\r'})
			case chunk[len(chunk)-1] == '\r':
				content, pendingCR = chunk[:len(chunk)-1], true
			}
			if ended && lineStart && len(content) == 0 {
				inHeader = false // the empty line after the header
			}
			w.Write(content)
			sent += int64(len(content))
			if ended || err == io.EOF {
				w.WriteString("\r\n")
				sent += 2
			}
			lineStart = ended
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return sent, err
		}
	}
	_, err := w.WriteString(".\r\n")
	return sent, err
}
