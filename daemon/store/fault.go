package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Storage faults. A damaged chain.db must stop the node loudly rather than
// crash it later (a page past the end of a truncated file is a SIGBUS on
// the first read of the mmap) or, worse, quietly start a new chain in an
// emptied file. Open checks the file before bbolt maps it; every read and
// write transaction runs with faults turned into errors.

var (
	// ErrEmpty: the file exists but holds no bytes. bbolt would initialise
	// it as a new database: the history that was there is gone.
	ErrEmpty = errors.New("store: database file is empty")
	// ErrTruncated: the file is shorter than its own meta page says.
	ErrTruncated = errors.New("store: database file is truncated")
	// ErrFault: a read hit a memory fault (an unmappable page) or bbolt
	// panicked on a damaged page. The process keeps running.
	ErrFault = errors.New("store: fault reading the database")
)

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common/meta.go):
// a 16-byte page header, then magic, version, page size, flags (4 bytes
// each), the root bucket (16), the freelist page id, the high-water page
// id, the transaction id (8 each) and an FNV-64a checksum of what precedes
// it. Both meta pages are read; the valid one with the higher txid is in
// force, exactly as bbolt chooses.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64
	txid     uint64
}

func parseMeta(buf []byte) (boltMeta, bool) {
	if len(buf) < pageHeaderSize+metaSize {
		return boltMeta{}, false
	}
	m := buf[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// CheckFile inspects the bbolt file at path without mapping it: a missing
// file is fine (a new database), an empty one is ErrEmpty, one shorter than
// its meta page's high-water mark is ErrTruncated, one with no valid meta
// page is ErrCorrupt.
func CheckFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return fmt.Errorf("%w: %s has 0 bytes", ErrEmpty, path)
	}
	buf := make([]byte, pageHeaderSize+metaSize)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("store: read %s: %w", path, err)
	}
	best, ok0 := parseMeta(buf)
	ps := int64(4096)
	if ok0 && best.pageSize >= 512 && best.pageSize <= 1<<20 {
		ps = int64(best.pageSize)
	}
	buf1 := make([]byte, pageHeaderSize+metaSize)
	var ok1 bool
	var m1 boltMeta
	if _, err := f.ReadAt(buf1, ps); err == nil {
		m1, ok1 = parseMeta(buf1)
	}
	switch {
	case !ok0 && !ok1:
		return fmt.Errorf("%w: %s has no valid bbolt meta page (%d bytes)", ErrCorrupt, path, size)
	case !ok0 || ok1 && m1.txid > best.txid:
		best = m1
	}
	if need := int64(best.pgid) * int64(best.pageSize); need > size {
		return fmt.Errorf("%w: %s has %d bytes but its meta page (txid %d) needs %d", ErrTruncated, path, size, best.txid, need)
	}
	return nil
}

// OpenReadOnly opens an existing database for reading only (posd check):
// the file is checked as by Open, nothing is created or written, and a
// running node's lock makes it fail with ErrInUse.
func OpenReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := CheckFile(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	err := faultSafe(func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &inUseError{path}
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// faultSafe runs fn with memory faults turned into panics, and any panic
// turned into an error wrapping ErrFault: a damaged page is an error for
// the caller, never the end of the process.
func faultSafe(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				err = fmt.Errorf("%w: %v", ErrFault, re)
				return
			}
			err = fmt.Errorf("%w: %v", ErrFault, r)
		}
	}()
	return fn()
}

// view is db.View behind faultSafe.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return faultSafe(func() error { return s.db.View(fn) })
}

// update is db.Update behind faultSafe; its outcome feeds WriteErr.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	err := faultSafe(func() error { return s.db.Update(fn) })
	s.health.record(err)
	return err
}

// updateBackground is update for work a commit does not wait for (a
// fold, a merge of the transaction index): its failure is recorded, but
// its success does not clear a commit's failure, and a fold that a
// Switch ended is no failure.
func (s *Store) updateBackground(fn func(*bolt.Tx) error) error {
	err := faultSafe(func() error { return s.db.Update(fn) })
	if err != nil && !errors.Is(err, errFoldMoved) {
		s.health.record(err)
	}
	return err
}

// writeHealth remembers whether the last write transaction failed for a
// reason of the disk (not a refused block: those write nothing).
type writeHealth struct {
	mu   sync.Mutex
	last error
}

func (w *writeHealth) record(err error) {
	if err != nil && (errors.Is(err, ErrNotHead) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrGenesisMismatch)) {
		return // a refusal, not a fault
	}
	w.mu.Lock()
	w.last = err
	w.mu.Unlock()
}

// WriteErr is the error of the last write transaction if it failed, nil once
// one succeeds again: while it is set the node cannot commit (disk full, file
// made immutable, I/O errors) and /healthz says so.
func (s *Store) WriteErr() error {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.last
}
