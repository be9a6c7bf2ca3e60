package chain

import (
	"encoding/binary"
	"fmt"
)

// Finality is the finality gadget's record on one branch (DESIGN "v3
// rules"): the justified and final checkpoints and what is needed to count
// the votes that blocks carry. It is part of the State: Apply replaces it
// (never mutates it: a record others read stays as it is), the Undo keeps
// the one before, and stores persist it in its binary encoding.
//
// This is the seam's first form; the rules fill it in.
type Finality struct {
	Justified Checkpoint
	Finalized Checkpoint
}

// MarshalBinary encodes the record for the store.
func (f *Finality) MarshalBinary() ([]byte, error) {
	return append(appendCheckpoint(nil, f.Justified), appendCheckpoint(nil, f.Finalized)...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (f *Finality) UnmarshalBinary(data []byte) error {
	d := decoder{buf: data}
	f.Justified = d.checkpoint()
	f.Finalized = d.checkpoint()
	if d.err == nil && len(d.buf) != 0 {
		return fmt.Errorf("%w: %d bytes after the finality record", ErrDecode, len(d.buf))
	}
	return d.err
}

func appendCheckpoint(b []byte, c Checkpoint) []byte {
	b = binary.BigEndian.AppendUint64(b, c.Height)
	return append(b, c.Hash[:]...)
}

func (d *decoder) checkpoint() (c Checkpoint) {
	c.Height = d.u64()
	d.bytes(c.Hash[:])
	return c
}
