package smtpserver

import (
	"bytes"
	"io"
)

// lfWriter writes what it is given with every CRLF turned into LF: the
// queue keeps LF line endings. A lone CR or LF passes unchanged. A CR at
// the end of one Write waits for the next (or Flush) to know what it is.
type lfWriter struct {
	w  io.Writer
	cr bool // a CR is held back
}

func (l *lfWriter) Write(p []byte) (int, error) {
	total := len(p)
	if total == 0 {
		return 0, nil
	}
	if l.cr {
		l.cr = false
		if p[0] != '\n' {
			if err := l.write([]byte{'\r'}); err != nil {
				return 0, err
			}
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			return total, l.write(p)
		}
		if err := l.write(p[:i]); err != nil {
			return 0, err
		}
		switch {
		case i+1 == len(p):
			l.cr = true
			return total, nil
		case p[i+1] == '\n':
			p = p[i+1:] // drop the CR, keep the LF
		default:
			if err := l.write(p[i : i+1]); err != nil {
				return 0, err
			}
			p = p[i+1:]
		}
	}
	return total, nil
}

// Flush writes a CR held back at the very end.
func (l *lfWriter) Flush() error {
	if !l.cr {
		return nil
	}
	l.cr = false
	return l.write([]byte{'\r'})
}

func (l *lfWriter) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if _, err := l.w.Write(p); err != nil {
		return &writeError{err}
	}
	return nil
}

// writeError is a failure to write into the queue, as opposed to a failure
// to read from the client.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
