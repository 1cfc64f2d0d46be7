package imapstore

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/emersion/go-message/textproto"
)

// readFile returns the message as IMAP sends it: every line ending CRLF,
// whatever the file holds (deliver keeps the line ends it was given).
func (f *folder) readFile(m *message) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(f.dir, m.file()))
	if err != nil {
		return nil, err
	}
	data = crlf(data)
	if m.size < 0 {
		m.size, f.saved = int64(len(data)), false
	}
	return data, nil
}

// crlf turns bare LFs into CRLF; data without one is returned as it is.
func crlf(data []byte) []byte {
	bare := 0
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			bare++
		}
	}
	if bare == 0 {
		return data
	}
	out := make([]byte, 0, len(data)+bare)
	for i, c := range data {
		if c == '\n' && (i == 0 || data[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// sizeOf returns m's size as sent, reading the file once if not known.
func (f *folder) sizeOf(m *message) int64 {
	if m.size < 0 {
		f.readFile(m)
	}
	return max(m.size, 0)
}

// readHeader reads only the header of m's file.
func (f *folder) readHeader(m *message) (textproto.Header, error) {
	file, err := os.Open(filepath.Join(f.dir, m.file()))
	if err != nil {
		return textproto.Header{}, err
	}
	defer file.Close()
	return textproto.ReadHeader(bufio.NewReader(io.LimitReader(file, 1<<20)))
}

// headerOf parses the header at the start of data.
func headerOf(data []byte) textproto.Header {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	return h
}
