package store

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mappedKiB is the resident size of the process's mappings of path, from
// /proc/self/smaps.
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps")
	}
	defer f.Close()
	kib, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && len(fields[1]) == 4 {
			// A mapping's first line: range, perms, offset, dev, inode, [path].
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			kib += n
		}
	}
	return kib
}

// After a commit the pages of chain.db that reads touched are no longer
// resident in the process (they stay in the page cache).
func TestCommitTrimsMapping(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	fillAccounts(t, s, 200_000)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	before := mappedKiB(t, path)
	if before < 8<<10 {
		t.Fatalf("a read of 200,000 accounts left %d KiB of chain.db resident; the test needs more", before)
	}
	st := f.g.State()
	b, u := f.next(t, &f.g.Block().Header, st, 2000)
	if err := s.Commit(b, u, st); err != nil {
		t.Fatal(err)
	}
	if after := mappedKiB(t, path); after > 1<<10 {
		t.Fatalf("after a commit %d KiB of chain.db resident (%d before)", after, before)
	}
}
