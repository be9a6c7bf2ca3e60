package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/poslab/posd/chain"
)

// The honest voter's slashing protection (the v3 rules, docs/CONSENSUS.md: honest voter):
// per key, the last vote it decided to sign, written and fsynced before the
// signature is made. A vote is signed only when its target is higher and
// its source no lower than the record's, so no two votes of a key form a
// double or surround pair, whatever crashes and restarts happen between.
//
// Layout (bucket "lastvote", made on first use, so older stores open as
// they are):
//
//	lastvote  voter address → version (1) source.height (8) source.hash (32)
//	          target.height (8) target.hash (32)

var bucketLastVote = []byte("lastvote")

const (
	lastVoteVersion = 1
	lastVoteLen     = 1 + 2*(8+32)
)

// LastVote is the link of a key's last vote.
type LastVote struct {
	Source chain.Checkpoint
	Target chain.Checkpoint
}

// ErrVoteRegress is returned by AdvanceLastVote for a link that does not
// advance the record (target not higher, or source lower): signing it could
// make a slashable pair with a vote already signed. Nothing is written.
var ErrVoteRegress = errors.New("store: vote does not advance the last vote")

// ErrLastVoteCorrupt is returned for a record that does not decode: the
// voter must not vote for that key until an operator looks.
var ErrLastVoteCorrupt = errors.New("store: last vote record is corrupt")

func encodeLastVote(lv LastVote) []byte {
	b := make([]byte, 0, lastVoteLen)
	b = append(b, lastVoteVersion)
	b = binary.BigEndian.AppendUint64(b, lv.Source.Height)
	b = append(b, lv.Source.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, lv.Target.Height)
	return append(b, lv.Target.Hash[:]...)
}

func decodeLastVote(b []byte) (LastVote, error) {
	var lv LastVote
	if len(b) != lastVoteLen || b[0] != lastVoteVersion {
		return lv, fmt.Errorf("%w: %d bytes", ErrLastVoteCorrupt, len(b))
	}
	p := b[1:]
	lv.Source.Height = binary.BigEndian.Uint64(p)
	p = p[8+copy(lv.Source.Hash[:], p[8:]):]
	lv.Target.Height = binary.BigEndian.Uint64(p)
	copy(lv.Target.Hash[:], p[8:])
	return lv, nil
}

// LastVote returns voter's last vote record; ok is false when it has none.
func (s *Store) LastVote(voter chain.Address) (lv LastVote, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketLastVote)
		if bk == nil {
			return nil
		}
		v := bk.Get([]byte(voter))
		if v == nil {
			return nil
		}
		lv, err = decodeLastVote(v)
		ok = err == nil
		return err
	})
	return lv, ok, err
}

// AdvanceLastVote records lv as voter's last vote if it advances the record
// (target higher, source no lower; any link when there is none), in one
// write transaction that bbolt fsyncs before it returns. Only after a nil
// answer may the vote be signed. A link that does not advance gives
// ErrVoteRegress and writes nothing; a link whose target is not above its
// source is refused the same way (it is no vote).
func (s *Store) AdvanceLastVote(voter chain.Address, lv LastVote) error {
	errs, err := s.AdvanceLastVotes([]chain.Address{voter}, []LastVote{lv})
	if err != nil {
		return err
	}
	return errs[0]
}

// AdvanceLastVotes is AdvanceLastVote for several keys in one write
// transaction (one fsync for all of a head's votes). errs[i] is nil when
// lvs[i] was recorded, ErrVoteRegress or ErrLastVoteCorrupt when it was
// refused (the others are still recorded); err is a failure of the
// transaction itself, after which nothing was recorded and nothing may be
// signed. Each voter may appear once.
func (s *Store) AdvanceLastVotes(voters []chain.Address, lvs []LastVote) (errs []error, err error) {
	if len(voters) != len(lvs) {
		return nil, fmt.Errorf("store: %d voters, %d links", len(voters), len(lvs))
	}
	err = faultSafe(func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			errs = make([]error, len(voters)) // again if bbolt retried
			bk, err := tx.CreateBucketIfNotExists(bucketLastVote)
			if err != nil {
				return fmt.Errorf("store: create bucket %s: %w", bucketLastVote, err)
			}
			for i, voter := range voters {
				lv := lvs[i]
				if lv.Target.Height <= lv.Source.Height {
					errs[i] = fmt.Errorf("%w: target %d not above source %d", ErrVoteRegress, lv.Target.Height, lv.Source.Height)
					continue
				}
				if v := bk.Get([]byte(voter)); v != nil {
					last, err := decodeLastVote(v)
					if err != nil {
						errs[i] = err
						continue
					}
					if lv.Target.Height <= last.Target.Height || lv.Source.Height < last.Source.Height {
						errs[i] = fmt.Errorf("%w: %d→%d after %d→%d", ErrVoteRegress,
							lv.Source.Height, lv.Target.Height, last.Source.Height, last.Target.Height)
						continue
					}
				}
				if err := bk.Put([]byte(voter), encodeLastVote(lv)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	s.health.record(err)
	if err != nil {
		return nil, err
	}
	return errs, nil
}
