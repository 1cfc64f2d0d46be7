package imapstore

import (
	"bufio"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/emersion/go-message/textproto"
)

// readFile returns the message as IMAP sends it: every line ending CRLF,
// whatever the file holds (deliver keeps the line ends it was given).
func (f *folder) readFile(m *message) ([]byte, error) {
	data, err := readWhole(filepath.Join(f.dir, m.file()))
	if err != nil {
		return nil, err
	}
	data = crlf(data)
	if m.size < 0 {
		m.size, f.saved = int64(len(data)), false
	}
	return data, nil
}

// readWhole reads a file with open, fstat, read and close: os.ReadFile
// also registers the descriptor with the poller (four fcntl calls and an
// epoll_ctl that fails for a regular file), twice the system calls of a
// FETCH BODY[] of one message.
func readWhole(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	// One byte more than the size, so that a file grown meanwhile is read
	// to its end by the loop and one that has not needs no second read.
	data := make([]byte, 0, st.Size+1)
	for {
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		data = data[:len(data)+n]
		if n == 0 || int64(len(data)) == st.Size && len(data) < cap(data) {
			return data, nil // the end, or the size fstat gave with room to spare
		}
		if len(data) == cap(data) {
			data = slices.Grow(data, 4096)
		}
	}
}

// crlf turns bare LFs into CRLF; data without one is returned as it is.
func crlf(data []byte) []byte {
	bare := bytes.Count(data, []byte{'\n'}) - bytes.Count(data, []byte("\r\n"))
	if bare == 0 {
		return data
	}
	out := make([]byte, 0, len(data)+bare)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return append(out, data...)
		}
		out = append(out, data[:i]...)
		if i == 0 || data[i-1] != '\r' {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		data = data[i+1:]
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
