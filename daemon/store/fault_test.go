package store

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/poslab/posd/chain"
)

// grow commits n blocks of a few transfers each, so the file spans many pages.
func grow(t *testing.T, s *Store, f *fixture, n int) {
	t.Helper()
	st := f.g.State()
	head, err := s.Head()
	if err != nil {
		t.Fatal(err)
	}
	parent := &head.Header
	nonce := uint64(0)
	for i := 0; i < n; i++ {
		var txs []chain.Transaction
		for j := 0; j < 20; j++ {
			nonce++
			txs = append(txs, f.tx(chain.TxTransfer, f.users[0], addrOf(key(100+j)), 1, 0, nonce))
		}
		b, u := f.next(t, parent, st, 2000, txs...)
		if err := s.Commit(b, u, st); err != nil {
			t.Fatal(err)
		}
		parent = &b.Header
	}
}

// F2: a chain.db truncated to 0 bytes is refused, not silently made a new chain.
func TestOpenRefusesEmptyFile(t *testing.T) {
	path := t.TempDir() + "/chain.db"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("Open of an empty file: %v, want ErrEmpty", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("Open wrote %d bytes into the empty file", fi.Size())
	}
}

// F1: a chain.db truncated to half is refused at Open, before bbolt maps it.
func TestOpenRefusesTruncatedFile(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	grow(t, s, f, 200)
	s.Close()
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Open of a truncated file: %v, want ErrTruncated", err)
	}
	if _, err := OpenReadOnly(path); !errors.Is(err, ErrTruncated) {
		t.Fatalf("OpenReadOnly of a truncated file: %v, want ErrTruncated", err)
	}
}

// A file of garbage has no valid meta page.
func TestOpenRefusesGarbage(t *testing.T) {
	path := t.TempDir() + "/chain.db"
	if err := os.WriteFile(path, make([]byte, 16384), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of zeros: %v, want ErrCorrupt", err)
	}
}

// F1 while running: the file is truncated under an open store. Reading a lost
// page is a SIGBUS in the mmap; the store turns it into an error and the
// process goes on.
func TestReadOfLostPageIsAnError(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	grow(t, s, f, 200)
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	var faults int
	for h := uint64(1); h <= 200; h++ {
		_, err := s.BlockByHeight(h)
		if errors.Is(err, ErrFault) {
			faults++
		}
	}
	if _, err := s.Verify(64); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Verify after truncation: %v, want ErrTruncated", err)
	}
	if faults == 0 {
		t.Fatal("no read reported ErrFault after the file lost all but two pages")
	}
}

// F6: a failing write is remembered until a write succeeds again.
func TestWriteErrTracksFailedCommits(t *testing.T) {
	f := newFixture(1)
	s, _ := openTemp(t)
	mustInit(t, s, f.g)
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr on a healthy store: %v", err)
	}
	boom := errors.New("disk full")
	if err := s.update(func(*boltTx) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if !errors.Is(s.WriteErr(), boom) {
		t.Fatalf("WriteErr = %v after a failed write", s.WriteErr())
	}
	if err := s.PutMeta("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr = %v after a successful write", err)
	}
	// A refused block writes nothing and is no disk fault.
	b := chain.NewBlock(f.g, &f.g.Block().Header, 0, f.g.Timestamp+5000, nil)
	b.Height = 7
	if err := s.Commit(b, &chain.Undo{Height: 7}, f.g.State()); !errors.Is(err, ErrNotHead) {
		t.Fatalf("Commit off the head: %v", err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr = %v after a refused block", err)
	}
}

// posd check: Verify passes a good chain and names a tampered account.
func TestVerify(t *testing.T) {
	f := newFixture(1)
	s, path := openTemp(t)
	mustInit(t, s, f.g)
	grow(t, s, f, 30)
	r, err := s.Verify(64)
	if err != nil || !r.OK() {
		t.Fatalf("Verify of a good store: %v %v", err, r.Problems)
	}
	if r.Height != 30 || r.Blocks != 31 {
		t.Fatalf("report %+v", r)
	}
	// Fold the diffs into the base first, so the tampered base value is
	// the stored state's (a pending diff would override it).
	if base, err := s.Compact(100); err != nil || base != 30 {
		t.Fatalf("Compact = %d, %v", base, err)
	}
	if err := s.update(func(tx *boltTx) error {
		return tx.Bucket(bucketAccounts).Put([]byte(addrOf(f.users[0])), encodeAccount(chain.Account{Balance: 1}))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err = ro.Verify(64)
	if err != nil || r.OK() {
		t.Fatalf("Verify of a tampered store: %v, problems %v", err, r.Problems)
	}
}

// posd check on a pruned chain: undo records below the reorg window are
// gone by design and pass; a missing or damaged one within the window, or a
// damaged one left below it, fails.
func TestVerifyPrunedUndo(t *testing.T) {
	const window, height = 8, 30
	cases := []struct {
		name   string
		damage func(tx *boltTx) error
		want   string // "" for a clean report
	}{
		{"pruned below the window", nil, ""},
		{"missing at the window's lowest height", func(tx *boltTx) error {
			return tx.Bucket(bucketUndo).Delete(heightKey(height - window + 1))
		}, "height 23: undo record: store: not found"},
		{"missing at the head", func(tx *boltTx) error {
			return tx.Bucket(bucketUndo).Delete(heightKey(height))
		}, "height 30: undo record: store: not found"},
		{"damaged below the window", func(tx *boltTx) error {
			return tx.Bucket(bucketUndo).Put(heightKey(3), []byte{9, 9, 9})
		}, "height 3: undo record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(1)
			s, _ := openTemp(t)
			mustInit(t, s, f.g)
			grow(t, s, f, height)
			if _, err := s.Prune(height - window); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Undo(height - window - 1); !errors.Is(err, ErrNotFound) {
				t.Fatalf("undo record below the cut after Prune: %v", err)
			}
			if tc.damage != nil {
				if err := s.update(tc.damage); err != nil {
					t.Fatal(err)
				}
			}
			r, err := s.Verify(window)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if !r.OK() {
					t.Fatalf("Verify of a pruned chain: %q", r.Problems)
				}
				return
			}
			if len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], tc.want) {
				t.Fatalf("problems %q, want one starting %q", r.Problems, tc.want)
			}
		})
	}
}
