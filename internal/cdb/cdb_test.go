package cdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

func build(t testing.TB, kv ...string) []byte {
	t.Helper()
	b := NewBuilder()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := b.Add([]byte(kv[i]), []byte(kv[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := b.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
	}
	return buf.Bytes()
}

func open(t testing.TB, data []byte) *Reader {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHash(t *testing.T) {
	// Values computed by hand from the definition in cdb.txt.
	tests := []struct {
		key  string
		want uint32
	}{
		{"", 5381},
		{"a", (5381<<5 + 5381) ^ 'a'},
		{"ab", ((((5381<<5 + 5381) ^ 'a') << 5) + ((5381 << 5) + 5381 ^ 'a')) ^ 'b'},
	}
	for _, tt := range tests {
		if got := Hash([]byte(tt.key)); got != tt.want {
			t.Errorf("Hash(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

// The layout is the one cdbmake writes: one record for "a" lands in table
// hash("a") & 255, which gets two slots, the record in slot (hash>>8) % 2.
func TestLayout(t *testing.T) {
	data := build(t, "a", "xyz")
	h := Hash([]byte("a"))
	wantLen := 2048 + 8 + 1 + 3 + 2*8
	if len(data) != wantLen {
		t.Fatalf("size %d, want %d", len(data), wantLen)
	}
	for i := range 256 {
		pos := binary.LittleEndian.Uint32(data[8*i:])
		slots := binary.LittleEndian.Uint32(data[8*i+4:])
		wantPos, wantSlots := uint32(2048+12), uint32(0)
		if uint32(i) == h&255 {
			wantSlots = 2
		}
		if uint32(i) > h&255 {
			wantPos += 16 // after the table that holds "a"
		}
		if pos != wantPos || slots != wantSlots {
			t.Fatalf("table %d: pos %d slots %d", i, pos, slots)
		}
	}
	if got := data[2048:2060]; !bytes.Equal(got, []byte{1, 0, 0, 0, 3, 0, 0, 0, 'a', 'x', 'y', 'z'}) {
		t.Fatalf("record % x", got)
	}
	s := (h >> 8) % 2
	slot := data[2060+8*s:]
	if binary.LittleEndian.Uint32(slot) != h || binary.LittleEndian.Uint32(slot[4:]) != 2048 {
		t.Fatalf("slot %d: % x", s, data[2060:])
	}
}

func TestRoundTrip(t *testing.T) {
	var kv []string
	for i := range 5000 {
		kv = append(kv, fmt.Sprintf("key%d", i), fmt.Sprintf("value %d", i*i))
	}
	kv = append(kv, "", "empty key", "dup", "first", "dup", "second", "novalue", "")
	r := open(t, build(t, kv...))
	for i := 0; i < len(kv); i += 2 {
		want := kv[i+1]
		if kv[i] == "dup" {
			want = "first"
		}
		v, ok, err := r.Get([]byte(kv[i]))
		if err != nil || !ok || string(v) != want {
			t.Fatalf("Get(%q) = %q, %v, %v; want %q", kv[i], v, ok, err, want)
		}
	}
	for _, k := range []string{"key5000", "Key1", "nope", "key"} {
		if v, ok, err := r.Get([]byte(k)); ok || err != nil {
			t.Errorf("Get(%q) = %q, %v, %v; want not found", k, v, ok, err)
		}
	}
}

func TestEmpty(t *testing.T) {
	data := build(t)
	if len(data) != 2048 {
		t.Fatalf("empty database is %d bytes, want 2048", len(data))
	}
	if _, ok, err := open(t, data).Get([]byte("x")); ok || err != nil {
		t.Fatalf("Get in an empty database: %v %v", ok, err)
	}
}

func TestCorrupt(t *testing.T) {
	good := build(t, "alpha", "one", "beta", "two")
	tests := []struct {
		name string
		data []byte
	}{
		{"short header", good[:100]},
		{"truncated tables", good[:len(good)-4]},
		{"table past the end", func() []byte {
			d := bytes.Clone(good)
			binary.LittleEndian.PutUint32(d[8*int(Hash([]byte("alpha"))&255):], 1<<30)
			return d
		}()},
	}
	for _, tt := range tests {
		r, err := NewReader(bytes.NewReader(tt.data), int64(len(tt.data)))
		if err == nil {
			_, _, err = r.Get([]byte("alpha"))
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tt.name, err)
		}
	}
	// A record that claims to run past the end.
	d := bytes.Clone(good)
	binary.LittleEndian.PutUint32(d[2048+4:], 1<<20)
	if _, _, err := open(t, d).Get([]byte("alpha")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("long record: err = %v, want ErrCorrupt", err)
	}
}

// A damaged or hostile file makes Get fail, never panic or hang.
func FuzzReader(f *testing.F) {
	f.Add(build(f, "a", "b", "postmaster", "root"), []byte("a"))
	f.Add(build(f), []byte(""))
	f.Fuzz(func(t *testing.T, data, key []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		r.Get(key)
	})
}
