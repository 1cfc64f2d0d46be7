// Package cdb reads and writes constant databases in D. J. Bernstein's cdb
// format (https://cr.yp.to/cdb/cdb.txt): a file written once and then only
// read, where finding a key costs one or two reads whatever the file's size.
//
// The file, all numbers 32-bit little-endian:
//
//	header   256 × (table position, table slots)     2048 bytes
//	records  (key length, data length, key, data)…   in the order added
//	tables   256 hash tables of (hash, record position) slots
//
// hash(key) starts at 5381 and for each byte c becomes (h << 5) + h ^ c.
// A key lives in table hash & 255; its search starts at slot
// (hash >> 8) % slots and goes on, wrapping, until the key is found or an
// empty slot (position 0) ends it. Each table has twice as many slots as
// records. Keys may repeat (Get returns the first); the file is at most 4 GiB.
package cdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

const headerSize = 256 * 8

// ErrTooBig: the database would pass the format's 4 GiB limit.
var ErrTooBig = errors.New("cdb: database larger than 4 GiB")

// ErrCorrupt: the file is not a well-formed cdb.
var ErrCorrupt = errors.New("cdb: corrupt database")

// Hash is the cdb hash of key.
func Hash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = (h<<5 + h) ^ uint32(c)
	}
	return h
}

// Builder collects records in memory and writes them as one cdb.
type Builder struct {
	records []record
	size    uint64 // bytes of header and records so far
}

type record struct {
	key, value []byte
	hash       uint32
	pos        uint32
}

// NewBuilder returns an empty database.
func NewBuilder() *Builder { return &Builder{size: headerSize} }

// Add appends a record; key and value are copied.
func (b *Builder) Add(key, value []byte) error {
	n := 8 + uint64(len(key)) + uint64(len(value))
	// Records, then 2 slots of 8 bytes per record in the tables.
	if b.size+n+16*uint64(len(b.records)+1) > math.MaxUint32 {
		return ErrTooBig
	}
	b.records = append(b.records, record{
		key: bytes.Clone(key), value: bytes.Clone(value), hash: Hash(key), pos: uint32(b.size),
	})
	b.size += n
	return nil
}

// WriteTo writes the database to w.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	var count [256]int
	for _, r := range b.records {
		count[r.hash&255]++
	}
	// Table i starts where table i-1 ends, after the records.
	var header [headerSize]byte
	pos := uint32(b.size)
	for i := range 256 {
		slots := uint32(2 * count[i])
		binary.LittleEndian.PutUint32(header[8*i:], pos)
		binary.LittleEndian.PutUint32(header[8*i+4:], slots)
		pos += 8 * slots
	}
	cw := &countWriter{w: w}
	cw.write(header[:])
	var n [8]byte
	for _, r := range b.records {
		binary.LittleEndian.PutUint32(n[:], uint32(len(r.key)))
		binary.LittleEndian.PutUint32(n[4:], uint32(len(r.value)))
		cw.write(n[:])
		cw.write(r.key)
		cw.write(r.value)
	}
	// Group the records by table, in order, then place each table.
	byTable := make([][]*record, 256)
	for i := range b.records {
		r := &b.records[i]
		byTable[r.hash&255] = append(byTable[r.hash&255], r)
	}
	for i := range 256 {
		slots := make([]byte, 16*count[i])
		nslots := uint32(2 * count[i])
		for _, r := range byTable[i] {
			s := (r.hash >> 8) % nslots
			for binary.LittleEndian.Uint32(slots[8*s+4:]) != 0 {
				s = (s + 1) % nslots
			}
			binary.LittleEndian.PutUint32(slots[8*s:], r.hash)
			binary.LittleEndian.PutUint32(slots[8*s+4:], r.pos)
		}
		cw.write(slots)
	}
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}

// Reader looks keys up in a cdb without reading the whole file.
type Reader struct {
	r      io.ReaderAt
	size   int64
	header [headerSize]byte
}

// NewReader reads the header of the cdb of size bytes in r.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	if size < headerSize || size > math.MaxUint32 {
		return nil, fmt.Errorf("%w: size %d", ErrCorrupt, size)
	}
	c := &Reader{r: r, size: size}
	if _, err := r.ReadAt(c.header[:], 0); err != nil {
		return nil, err
	}
	for i := range 256 {
		pos := int64(binary.LittleEndian.Uint32(c.header[8*i:]))
		slots := int64(binary.LittleEndian.Uint32(c.header[8*i+4:]))
		if pos < headerSize || pos+8*slots > size {
			return nil, fmt.Errorf("%w: table %d out of the file", ErrCorrupt, i)
		}
	}
	return c, nil
}

// Get returns the value of the first record with key; ok is false when there
// is none.
func (c *Reader) Get(key []byte) (value []byte, ok bool, err error) {
	h := Hash(key)
	i := h & 255
	tpos := int64(binary.LittleEndian.Uint32(c.header[8*i:]))
	nslots := binary.LittleEndian.Uint32(c.header[8*i+4:])
	if nslots == 0 {
		return nil, false, nil
	}
	var slot, rec [8]byte
	s := (h >> 8) % nslots
	for range nslots {
		if err := c.read(slot[:], tpos+8*int64(s)); err != nil {
			return nil, false, err
		}
		sh := binary.LittleEndian.Uint32(slot[:])
		rpos := int64(binary.LittleEndian.Uint32(slot[4:]))
		if rpos == 0 {
			return nil, false, nil
		}
		if sh == h {
			if err := c.read(rec[:], rpos); err != nil {
				return nil, false, err
			}
			klen := int64(binary.LittleEndian.Uint32(rec[:]))
			dlen := int64(binary.LittleEndian.Uint32(rec[4:]))
			if rpos+8+klen+dlen > c.size {
				return nil, false, fmt.Errorf("%w: record at %d out of the file", ErrCorrupt, rpos)
			}
			if klen == int64(len(key)) {
				buf := make([]byte, klen+dlen)
				if err := c.read(buf, rpos+8); err != nil {
					return nil, false, err
				}
				if bytes.Equal(buf[:klen], key) {
					return buf[klen:], true, nil
				}
			}
		}
		s = (s + 1) % nslots
	}
	return nil, false, nil
}

// read fills p from offset off, which must lie inside the file.
func (c *Reader) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > c.size {
		return fmt.Errorf("%w: read at %d out of the file", ErrCorrupt, off)
	}
	_, err := c.r.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: short file", ErrCorrupt)
	}
	return err
}
