package figure

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// Flags are the flags of every bench program: -n, -par, -dir, and the
// program it measures (-sendmail, -deliver, -runner).
type Flags struct {
	N, Par  int
	Dir     string // base of the temp dir
	Program string // absolute, and known to exist, once Main calls run
	name    string // the program's flag
}

// Register defines -n and -par with these defaults and usages, -dir, and
// -program (default bin/program).
func (f *Flags) Register(n, par int, nUsage, parUsage, program, programUsage string) {
	flag.IntVar(&f.N, "n", n, nUsage)
	flag.IntVar(&f.Par, "par", par, parUsage)
	flag.StringVar(&f.Dir, "dir", "/var/tmp", "where the temp dir goes: a real disk, not tmpfs")
	flag.StringVar(&f.Program, program, "bin/"+program, programUsage)
	f.name = program
}

// Main parses the flags, checks them and the program, makes a temp dir
// under -dir and runs run in it, then removes it. On an error it prints "prog: err" to stderr and exits 1.
func Main(prog, prefix string, f *Flags, run func(dir string) error) {
	flag.Parse()
	if err := f.inTempDir(prefix, run); err != nil {
		fmt.Fprintln(os.Stderr, prog+":", err)
		os.Exit(1)
	}
}

func (f *Flags) inTempDir(prefix string, run func(dir string) error) error {
	if f.N < f.Par || f.Par < 1 {
		return errors.New("need -n ≥ -par ≥ 1") // what Parallel cannot run
	}
	var err error
	if f.Program, err = Binary(f.Program, f.name); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(f.Dir, prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return run(dir)
}

// Binary is the absolute path of a program to measure, given by the flag
// flagName, once it is known to exist.
func Binary(path, flagName string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("%w (make build, or -%s PATH)", err, flagName)
	}
	return abs, nil
}
