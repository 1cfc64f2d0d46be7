package imapstore

import (
	"bytes"
	"errors"
	"io/fs"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Fetch answers FETCH. FLAGS, UID and (once known) RFC822.SIZE and
// INTERNALDATE come from the folder's list; anything else reads the file.
// A body section fetched without PEEK sets \Seen, as RFC 9051 §6.4.5 says.
func (s *Session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	sel := s.sel
	markSeen := false
	if !sel.readOnly {
		for _, bs := range options.BodySection {
			markSeen = markSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			markSeen = markSeen || !bs.Peek
		}
	}
	needBody := options.Envelope || options.BodyStructure != nil || len(options.BodySection) > 0 ||
		len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	var seen []uint32 // sequence numbers to mark \Seen
	err := sel.forEach(numSet, func(seq uint32, m *message) error {
		var data []byte
		if needBody || options.RFC822Size && m.size < 0 {
			var err error
			data, err = sel.f.readFile(m)
			if errors.Is(err, fs.ErrNotExist) {
				return nil // expunged by another session: EXPUNGE follows
			}
			if err != nil {
				return s.fault("fetch", err)
			}
		}
		if options.InternalDate {
			sel.f.stat(m)
		}
		setSeen := markSeen && !hasLetter(m, 'S')
		if setSeen {
			seen = append(seen, seq)
		}
		rw := w.CreateMessage(seq)
		if options.UID { // asked for, or UID FETCH (RFC 9051 §6.4.9)
			rw.WriteUID(m.uid)
		}
		if options.Flags || setSeen {
			flags := sel.f.flags(m)
			if setSeen {
				flags = append(flags, imap.FlagSeen)
			}
			rw.WriteFlags(flags)
		}
		if options.InternalDate {
			rw.WriteInternalDate(time.Unix(m.date, 0))
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(max(m.size, 0))
		}
		if options.Envelope {
			rw.WriteEnvelope(imapserver.ExtractEnvelope(headerOf(data)))
		}
		if options.BodyStructure != nil {
			rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(data)))
		}
		for _, bs := range options.BodySection {
			var buf []byte
			if bs.Specifier == imap.PartSpecifierNone && len(bs.Part) == 0 {
				buf = partial(data, bs.Partial) // BODY[]: the file as it is
			} else {
				buf = imapserver.ExtractBodySection(bytes.NewReader(data), bs)
			}
			wc := rw.WriteBodySection(bs, int64(len(buf)))
			_, err := wc.Write(buf)
			if cerr := wc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		for _, bs := range options.BinarySection {
			buf := imapserver.ExtractBinarySection(bytes.NewReader(data), bs)
			wc := rw.WriteBinarySection(bs, int64(len(buf)))
			_, err := wc.Write(buf)
			if cerr := wc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		for _, bss := range options.BinarySectionSize {
			rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(data), bss))
		}
		return rw.Close()
	})
	if len(seen) > 0 {
		s.markSeen(seen)
	}
	return err
}

// markSeen adds \Seen to the messages fetched without PEEK.
func (s *Session) markSeen(seqs []uint32) {
	sel := s.sel
	unlock, err := sel.f.lock()
	if err != nil {
		s.fault("fetch: set \\Seen", err)
		return
	}
	defer unlock()
	for _, seq := range seqs {
		m := sel.messages()[seq-1]
		if hasLetter(m, 'S') {
			continue
		}
		info := m.info + "S"
		info, _ = sel.f.letters(sel.f.flags(&message{info: info}))
		if err := sel.f.setInfo(m, info); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.fault("fetch: set \\Seen", err)
			return
		}
		sel.told[seq-1] = m.info + recentMark(m)
	}
}

// partial is <offset.size> of b (RFC 9051 §6.4.5).
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset > int64(len(b)) {
		return nil
	}
	return b[p.Offset:min(p.Offset+p.Size, int64(len(b)))]
}
