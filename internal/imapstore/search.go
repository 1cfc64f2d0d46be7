package imapstore

import (
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Search answers SEARCH (and ESEARCH, SEARCHRES). Flags, UIDs and sequence
// numbers are matched from the folder's list; sizes and internal dates
// from the list once known; headers read only the header of each file;
// BODY and TEXT read the whole message.
func (s *Session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	sel := s.sel
	sel.static(criteria)
	var (
		data   imap.SearchData
		seqSet imap.SeqSet
		uidSet imap.UIDSet
	)
	for i, m := range sel.messages() {
		seq := uint32(i + 1)
		c := &candidate{sel: sel, f: sel.f, m: m, seq: seq}
		if !c.match(criteria) {
			continue
		}
		uidSet.AddNum(m.uid)
		num := seq
		if kind == imapserver.NumKindUID {
			num = uint32(m.uid)
		} else {
			seqSet.AddNum(seq)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
	}
	if kind == imapserver.NumKindUID {
		data.All = uidSet
	} else {
		data.All = seqSet
	}
	if options.ReturnSave {
		sel.searchRes = uidSet
	}
	return &data, nil
}

// static makes the criteria's number sets static ("*", "$").
func (sel *selected) static(c *imap.SearchCriteria) {
	var seqs []imap.SeqSet
	for _, set := range c.SeqNum {
		if imap.IsSearchRes(set) {
			c.UID = append(c.UID, sel.searchRes)
			continue
		}
		seqs = append(seqs, staticSeq(set, uint32(len(sel.messages()))))
	}
	c.SeqNum = seqs
	var last imap.UID
	if view := sel.messages(); len(view) > 0 {
		last = view[len(view)-1].uid
	}
	for i, set := range c.UID {
		if imap.IsSearchRes(set) {
			c.UID[i] = sel.searchRes
		} else {
			c.UID[i] = staticUID(set, last)
		}
	}
	for i := range c.Not {
		sel.static(&c.Not[i])
	}
	for i := range c.Or {
		sel.static(&c.Or[i][0])
		sel.static(&c.Or[i][1])
	}
}

// candidate is one message being matched, with what was read of it.
type candidate struct {
	sel    *selected
	f      *folder
	m      *message
	seq    uint32
	header *textproto.Header
	data   []byte
	failed bool
}

func (c *candidate) readHeader() *textproto.Header {
	if c.header == nil {
		h, err := c.f.readHeader(c.m)
		if err != nil {
			c.failed = true
		}
		c.header = &h
	}
	return c.header
}

func (c *candidate) readAll() []byte {
	if c.data == nil {
		data, err := c.f.readFile(c.m)
		if err != nil {
			c.failed = true
		}
		c.data = data
	}
	return c.data
}

func (c *candidate) match(cr *imap.SearchCriteria) bool {
	for _, set := range cr.SeqNum {
		if !set.Contains(c.seq) {
			return false
		}
	}
	for _, set := range cr.UID {
		if !set.Contains(c.m.uid) {
			return false
		}
	}
	flags := c.f.flags(c.m)
	has := func(fl imap.Flag) bool {
		for _, f := range flags {
			if strings.EqualFold(string(f), string(fl)) {
				return true
			}
		}
		return false
	}
	for _, fl := range cr.Flag {
		if !has(fl) {
			return false
		}
	}
	for _, fl := range cr.NotFlag {
		if has(fl) {
			return false
		}
	}
	if !cr.Since.IsZero() || !cr.Before.IsZero() {
		c.f.stat(c.m)
		if !matchDate(time.Unix(c.m.date, 0), cr.Since, cr.Before) {
			return false
		}
	}
	if cr.Larger != 0 || cr.Smaller != 0 {
		size := c.f.sizeOf(c.m)
		if cr.Larger != 0 && size <= cr.Larger || cr.Smaller != 0 && size >= cr.Smaller {
			return false
		}
	}
	for _, hf := range cr.Header {
		if !matchValues(c.fieldValues(hf.Key), hf.Value) {
			return false
		}
	}
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		h := mail.Header{Header: gomessage.Header{Header: *c.readHeader()}}
		t, err := h.Date()
		if err != nil || !matchDate(t, cr.SentSince, cr.SentBefore) {
			return false
		}
	}
	for _, text := range cr.Text {
		if !matchEntity(entity(c.readAll()), text, true) {
			return false
		}
	}
	for _, body := range cr.Body {
		if !matchEntity(entity(c.readAll()), body, false) {
			return false
		}
	}
	for i := range cr.Not {
		if c.match(&cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !c.match(&cr.Or[i][0]) && !c.match(&cr.Or[i][1]) {
			return false
		}
	}
	return true
}

// matchDate compares days only, without time zones (RFC 9051 §6.4.4).
func matchDate(t, since, before time.Time) bool {
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && t.Before(since) {
		return false
	}
	if !before.IsZero() && !t.Before(before) {
		return false
	}
	return true
}

func matchFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

func entity(data []byte) *gomessage.Entity {
	e, _ := gomessage.Read(bytes.NewReader(data))
	if e == nil {
		e, _ = gomessage.New(gomessage.Header{}, bytes.NewReader(nil))
	}
	return e
}

// matchEntity looks for pattern in the text parts (and the header fields,
// for TEXT), decoded, without regard to case.
func matchEntity(e *gomessage.Entity, pattern string, withHeader bool) bool {
	if pattern == "" {
		return true
	}
	if withHeader && matchFields(e.Header.Fields(), pattern) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(part, pattern, withHeader) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	buf, _ := io.ReadAll(e.Body)
	return bytes.Contains(bytes.ToLower(buf), bytes.ToLower([]byte(pattern)))
}

// maxCachedFields bounds the session's cache of searched header fields.
const maxCachedFields = 1 << 20

// fieldValues returns the decoded values of the message's fields named
// key, from the session's cache when it has them.
func (c *candidate) fieldValues(key string) []string {
	k := strings.ToLower(key)
	if vals, ok := c.sel.fields[k][c.m.uid]; ok {
		return vals
	}
	h := mail.Header{Header: gomessage.Header{Header: *c.readHeader()}}
	vals := []string{}
	for fields := h.FieldsByKey(key); fields.Next(); {
		v, err := fields.Text()
		if err != nil {
			v = fields.Value()
		}
		vals = append(vals, v)
	}
	if !c.failed && c.sel.fieldsCount < maxCachedFields {
		if c.sel.fields == nil {
			c.sel.fields = make(map[string]map[imap.UID][]string)
		}
		if c.sel.fields[k] == nil {
			c.sel.fields[k] = make(map[imap.UID][]string)
		}
		c.sel.fields[k][c.m.uid] = vals
		c.sel.fieldsCount++
	}
	return vals
}

// matchValues: any value contains pattern, without regard to case; an
// empty pattern matches when the field is there (RFC 9051 §6.4.4, HEADER).
func matchValues(vals []string, pattern string) bool {
	if pattern == "" {
		return len(vals) > 0
	}
	pattern = strings.ToLower(pattern)
	for _, v := range vals {
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}
