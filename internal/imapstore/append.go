package imapstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"yubin/internal/maildir"
)

// incoming is a message to store in a folder: its bytes, flags and date.
type incoming struct {
	data  []byte
	flags []imap.Flag
	date  time.Time
}

// store delivers msgs into f durably (internal/maildir: tmp/, fsync, new/,
// fsync), then, under the folder lock, sets their dates, moves them to cur/
// with their flags, fsyncs cur/ and gives them their UIDs, in order.
func (f *folder) store(msgs []incoming) ([]imap.UID, error) {
	names := make([]string, len(msgs))
	for i, in := range msgs {
		name, err := maildir.Dir(f.dir).Deliver(bytes.NewReader(in.data), int64(len(in.data)))
		if err != nil {
			for _, n := range names[:i] {
				os.Remove(filepath.Join(f.dir, "new", n))
			}
			return nil, err
		}
		names[i] = name
	}
	unlock, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if f.keywords, err = readKeywords(f.dir); err != nil {
		return nil, err
	}
	kwAdded := false
	for i, in := range msgs {
		info, added := f.letters(in.flags)
		kwAdded = kwAdded || added
		from := filepath.Join(f.dir, "new", names[i])
		if !in.date.IsZero() {
			os.Chtimes(from, in.date, in.date)
		}
		if err := os.Rename(from, filepath.Join(f.dir, "cur", names[i]+":2,"+info)); err != nil {
			return nil, err
		}
	}
	if kwAdded {
		if err := writeKeywords(f.dir, f.keywords); err != nil {
			return nil, err
		}
	}
	if err := syncDir(filepath.Join(f.dir, "cur")); err != nil {
		return nil, err
	}
	if err := f.syncLocked(false, false); err != nil {
		return nil, err
	}
	uids := make([]imap.UID, len(msgs))
	for i, n := range names {
		for _, m := range f.messages() {
			if m.base == n {
				uids[i] = m.uid
				if m.size < 0 {
					m.size = int64(len(crlf(msgs[i].data)))
				}
				if !msgs[i].date.IsZero() {
					m.date = msgs[i].date.Unix()
				}
				m.recent = false
			}
		}
		if uids[i] == 0 {
			return nil, fmt.Errorf("%s: %s vanished while being stored", f.dir, n)
		}
	}
	return uids, nil
}

// Append stores a message (UIDPLUS: its UID in APPENDUID).
func (s *Session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	f, err := s.folder(name)
	if errors.Is(err, errNoMailbox) {
		return nil, errTryCreate
	}
	if err != nil {
		return nil, err
	}
	if s.sel != nil && s.sel.f.dir == f.dir {
		f = s.sel.f
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	uids, err := f.store([]incoming{{data: data, flags: options.Flags, date: date}})
	if err != nil {
		return nil, s.fault("append to "+name, err)
	}
	return &imap.AppendData{UID: uids[0], UIDValidity: f.uidValidity}, nil
}

// copyTo stores copies of the messages of numSet in folder dest.
func (s *Session) copyTo(numSet imap.NumSet, dest string) (*imap.CopyData, []int, error) {
	sel := s.sel
	f, err := s.folder(dest)
	if errors.Is(err, errNoMailbox) {
		return nil, nil, errTryCreate
	}
	if err != nil {
		return nil, nil, err
	}
	if f.dir == sel.f.dir {
		f = sel.f
	}
	var (
		msgs []incoming
		idx  []int
		src  imap.UIDSet
	)
	err = sel.forEach(numSet, func(seq uint32, m *message) error {
		data, err := os.ReadFile(filepath.Join(sel.f.dir, m.file()))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		sel.f.stat(m)
		var flags []imap.Flag
		for _, fl := range sel.f.flags(m) {
			if fl != flagRecent {
				flags = append(flags, fl)
			}
		}
		msgs = append(msgs, incoming{data: data, flags: flags, date: time.Unix(m.date, 0)})
		idx = append(idx, int(seq-1))
		src.AddNum(m.uid)
		return nil
	})
	if err != nil {
		return nil, nil, s.fault("copy", err)
	}
	if len(msgs) == 0 {
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "No messages to copy"}
	}
	uids, err := f.store(msgs)
	if err != nil {
		return nil, nil, s.fault("copy to "+dest, err)
	}
	var dst imap.UIDSet
	for _, u := range uids {
		dst.AddNum(u)
	}
	return &imap.CopyData{UIDValidity: f.uidValidity, SourceUIDs: src, DestUIDs: dst}, idx, nil
}

// Copy copies messages (UIDPLUS: COPYUID).
func (s *Session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, _, err := s.copyTo(numSet, dest)
	return data, err
}

// Move copies messages, then removes them here (RFC 6851): a crash in
// between leaves them in both folders, never in none.
func (s *Session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	data, idx, err := s.copyTo(numSet, dest)
	if err != nil {
		return err
	}
	if err := s.remove(sel, idx); err != nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	for j := len(idx) - 1; j >= 0; j-- {
		i := idx[j]
		if err := w.WriteExpunge(uint32(i + 1)); err != nil {
			return err
		}
		sel.drop(i)
	}
	return nil
}
