package figure

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Probe is the disk work of one file in Disk.
type Probe int

const (
	// Fsync: a 4 KB file created in new/, written and fsync'd: the raw
	// fsync rate (reference.sh's "create+write+fsync").
	Fsync Probe = iota
	// Rename: written and fsync'd in tmp/, renamed into new/, new/
	// fsync'd: what a queue commit costs the disk (reference.sh's
	// "+ rename tmp->new + fsync(dir)").
	Rename
	// Link: written and fsync'd in tmp/, linked into new/, new/ fsync'd,
	// the tmp/ name removed: what a Maildir delivery costs the disk.
	Link
)

// Disk writes n 4 KB files under base, par at a time, each as p says, into
// dirs directories base/D/{tmp,new} in turn, and returns the files per
// second. base is removed afterwards.
func Disk(base string, n, par, dirs int, p Probe) (float64, error) {
	defer os.RemoveAll(base)
	newDirs := make([]*os.File, dirs)
	for d := range dirs {
		for _, sub := range []string{"tmp", "new"} {
			if err := os.MkdirAll(filepath.Join(base, fmt.Sprint(d), sub), 0o700); err != nil {
				return 0, err
			}
		}
		f, err := os.Open(filepath.Join(base, fmt.Sprint(d), "new"))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		newDirs[d] = f
	}
	buf := make([]byte, 4096)
	return Parallel(n, par, func(_, i int) error {
		d := i % dirs
		name := fmt.Sprintf("f%d", i)
		final := filepath.Join(base, fmt.Sprint(d), "new", name)
		path := final
		if p != Fsync {
			path = filepath.Join(base, fmt.Sprint(d), "tmp", name)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(buf)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil || p == Fsync {
			return err
		}
		if p == Rename {
			err = os.Rename(path, final)
		} else {
			err = os.Link(path, final)
		}
		if err != nil {
			return err
		}
		if err := newDirs[d].Sync(); err != nil || p == Rename {
			return err
		}
		return os.Remove(path)
	})
}

// Counters are reference.sh's snap: the disk's completed flushes and write
// IOs, and the machine's busy and total CPU time in clock ticks.
type Counters struct {
	flushes, writes int64
	busy, total     int64
	disk            string // the device, "" when it was not found
}

// userHZ is the unit of /proc/stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// Snap reads the counters of the disk under dir and of the CPUs. What it
// cannot read stays zero: Stats then says so.
func Snap(dir string) Counters {
	var c Counters
	c.disk = device(dir)
	if b, err := os.ReadFile("/proc/diskstats"); err == nil && c.disk != "" {
		for l := range strings.Lines(string(b)) {
			f := strings.Fields(l)
			// major minor name, reads (4), writes completed, …, flushes completed (field 18 after the name)
			if len(f) >= 19 && f[2] == c.disk {
				c.writes, _ = strconv.ParseInt(f[7], 10, 64)
				c.flushes, _ = strconv.ParseInt(f[18], 10, 64)
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for l := range strings.Lines(string(b)) {
			f := strings.Fields(l)
			if len(f) < 8 || f[0] != "cpu" {
				continue
			}
			var v [8]int64
			for i := 1; i < 8; i++ {
				v[i], _ = strconv.ParseInt(f[i], 10, 64)
			}
			// user nice system idle iowait irq softirq: busy is all but idle and iowait.
			c.busy = v[1] + v[2] + v[3] + v[6] + v[7]
			c.total = c.busy + v[4] + v[5]
		}
	}
	return c
}

// Stats is reference.sh's stats: disk flushes and write IOs per message,
// machine-wide CPU busy and CPU ms per message, for n messages since
// before. Machine-wide: other work on the machine counts too.
func (c Counters) Stats(n int, before Counters) string {
	if c.disk == "" {
		return "disk counters: device not found"
	}
	busy := float64(c.busy - before.busy)
	total := max(float64(c.total-before.total), 1)
	return fmt.Sprintf("flush/msg %.2f  wIO/msg %.1f  cpu %.0f%%  %.1f cpu-ms/msg (%s, all cpus)",
		float64(c.flushes-before.flushes)/float64(n), float64(c.writes-before.writes)/float64(n),
		100*busy/total, 1000*busy/userHZ/float64(n), c.disk)
}

// device is the name in /proc/diskstats of the disk holding dir: the whole
// disk when dir is on a partition, as reference.sh's `lsblk -no pkname`.
func device(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return ""
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	path, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(path, "partition")); err == nil {
		path = filepath.Dir(path)
	}
	return filepath.Base(path)
}
