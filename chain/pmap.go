package chain

import (
	"encoding/hex"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync/atomic"
)

// pmap is a persistent map from addresses to V: a hash array mapped trie
// in the CHAMP layout (each node keeps its entries and its subtrees in two
// bitmap-compressed arrays). A copy (cloneTo) costs O(1) and shares every
// node; a write copies only the nodes on its path that the map does not
// own yet, O(log₃₂ n), so a state of a million accounts is copied per block
// for the price of what the block changed.
//
// Ownership: every node records the edit token of the map that made it. A
// map writes in place the nodes carrying its own token and copies the
// others first. cloneTo gives both maps fresh tokens, so from then on
// neither writes a node the other can see. Readers of a map nobody writes
// may run concurrently with each other and with cloneTo; writes need the
// map to themselves, as with a Go map.
type pmap[V comparable] struct {
	root *pnode[V]
	n    int
	edit atomic.Uint64
}

type pnode[V comparable] struct {
	edit    uint64
	datamap uint32 // slots holding an entry
	nodemap uint32 // slots holding a subtree
	entries []pentry[V]
	kids    []*pnode[V]
}

type pentry[V comparable] struct {
	key pkey
	val V
}

// pkey is a key as the trie holds it. An address (40 lowercase hex
// characters) is held as its 20 bytes, inside the entry: a state of a
// million accounts is then not also a million small strings for the
// collector to mark on every cycle (they were a quarter of a big node's
// live heap and most of its marking; docs/PERFORMANCE.md). A key of at
// most 20 bytes that is not an address (the release queue's heights) is
// held as itself; a longer one (the slashings' offence keys, few) as a
// string.
type pkey struct {
	b    [20]byte
	n    uint8  // pkeyAddr, pkeyLong, or the length of a short key in b
	long string // the key, when n is pkeyLong
}

const (
	pkeyAddr = 0xff
	pkeyLong = 0xfe
)

// pkeyOf is a's key. Distinct strings have distinct keys: an address
// only ever has the pkeyAddr form, and the other forms hold the bytes.
func pkeyOf(a Address) pkey {
	var k pkey
	if len(a) == 2*len(k.b) {
		var bad byte
		for i := range k.b {
			hi, lo := unhexTable[a[2*i]], unhexTable[a[2*i+1]]
			bad |= hi | lo
			k.b[i] = hi<<4 | lo
		}
		if bad&0xf0 == 0 {
			k.n = pkeyAddr
			return k
		}
		k.b = [20]byte{}
	}
	if len(a) <= len(k.b) {
		copy(k.b[:], a)
		k.n = uint8(len(a))
		return k
	}
	return pkey{n: pkeyLong, long: string(a)}
}

// address is the string k stands for.
func (k *pkey) address() Address {
	switch k.n {
	case pkeyAddr:
		return Address(hex.EncodeToString(k.b[:]))
	case pkeyLong:
		return Address(k.long)
	default:
		return Address(k.b[:k.n])
	}
}

const (
	pbits = 5
	// pmaxShift: past it the hash is used up and a node is a collision
	// list (entries only, bitmaps unused).
	pmaxShift = 64
)

// paddrSeed seeds the trie's hash. Its order is never observable: the
// state is listed sorted, and consensus never depends on iteration order.
var paddrSeed = maphash.MakeSeed()

func phash(k pkey) uint64 {
	if k.n == pkeyLong {
		return maphash.String(paddrSeed, k.long)
	}
	var buf [21]byte
	copy(buf[:], k.b[:])
	buf[20] = k.n
	return maphash.Bytes(paddrSeed, buf[:])
}

// phashOf is the trie's hash; tests swap in a weak one to exercise
// collisions.
var phashOf = phash

var pedits atomic.Uint64

func newEdit() uint64 { return pedits.Add(1) }

func pslot(h uint64, shift uint) uint32 { return 1 << ((h >> shift) & 31) }

func pindex(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

// Len is the number of keys.
func (m *pmap[V]) Len() int { return m.n }

// cloneTo makes c a copy of m, sharing every node.
func (m *pmap[V]) cloneTo(c *pmap[V]) {
	c.root, c.n = m.root, m.n
	m.edit.Store(newEdit())
	c.edit.Store(newEdit())
}

func (m *pmap[V]) get(a Address) (V, bool) {
	k := pkeyOf(a)
	return m.getH(k, phashOf(k))
}

func (m *pmap[V]) getH(k pkey, h uint64) (V, bool) {
	n := m.root
	for shift := uint(0); n != nil; shift += pbits {
		if shift >= pmaxShift {
			for i := range n.entries {
				if n.entries[i].key == k {
					return n.entries[i].val, true
				}
			}
			break
		}
		bit := pslot(h, shift)
		if n.datamap&bit != 0 {
			e := &n.entries[pindex(n.datamap, bit)]
			if e.key == k {
				return e.val, true
			}
			break
		}
		if n.nodemap&bit == 0 {
			break
		}
		n = n.kids[pindex(n.nodemap, bit)]
	}
	var zero V
	return zero, false
}

// token is the edit token of m's writes.
func (m *pmap[V]) token() uint64 {
	e := m.edit.Load()
	if e == 0 {
		e = newEdit()
		m.edit.Store(e)
	}
	return e
}

// own returns n if m may write it, else a copy m may write.
func pown[V comparable](n *pnode[V], edit uint64) *pnode[V] {
	if n.edit == edit {
		return n
	}
	return &pnode[V]{edit: edit, datamap: n.datamap, nodemap: n.nodemap, entries: slices.Clone(n.entries), kids: slices.Clone(n.kids)}
}

// set maps k to v and returns the previous value, if any.
func (m *pmap[V]) set(a Address, v V) (V, bool) {
	k := pkeyOf(a)
	return m.setH(k, phashOf(k), v)
}

func (m *pmap[V]) setH(k pkey, h uint64, v V) (old V, had bool) {
	edit := m.token()
	if m.root == nil {
		m.root = &pnode[V]{edit: edit}
	}
	m.root, old, had = pinsert(m.root, h, 0, pentry[V]{k, v}, edit)
	if !had {
		m.n++
	}
	return old, had
}

func pinsert[V comparable](n *pnode[V], h uint64, shift uint, e pentry[V], edit uint64) (*pnode[V], V, bool) {
	if shift >= pmaxShift {
		for i := range n.entries {
			if n.entries[i].key == e.key {
				old := n.entries[i].val
				if old != e.val {
					n = pown(n, edit)
					n.entries[i].val = e.val
				}
				return n, old, true
			}
		}
		n = pown(n, edit)
		n.entries = append(n.entries, e)
		var zero V
		return n, zero, false
	}
	bit := pslot(h, shift)
	switch {
	case n.datamap&bit != 0:
		i := pindex(n.datamap, bit)
		cur := n.entries[i]
		if cur.key == e.key {
			if cur.val != e.val {
				n = pown(n, edit)
				n.entries[i].val = e.val
			}
			return n, cur.val, true
		}
		// Two keys in one slot: push both a level down.
		n = pown(n, edit)
		kid := ppair(cur, phashOf(cur.key), e, h, shift+pbits, edit)
		n.entries = slices.Delete(n.entries, i, i+1)
		n.datamap &^= bit
		n.nodemap |= bit
		n.kids = slices.Insert(n.kids, pindex(n.nodemap, bit), kid)
		var zero V
		return n, zero, false
	case n.nodemap&bit != 0:
		i := pindex(n.nodemap, bit)
		kid, old, had := pinsert(n.kids[i], h, shift+pbits, e, edit)
		if kid != n.kids[i] {
			n = pown(n, edit)
			n.kids[i] = kid
		}
		return n, old, had
	default:
		n = pown(n, edit)
		n.datamap |= bit
		n.entries = slices.Insert(n.entries, pindex(n.datamap, bit), e)
		var zero V
		return n, zero, false
	}
}

// pair is a node at shift holding a and b, distinct keys with hashes ha
// and hb that share every slot above shift.
func ppair[V comparable](a pentry[V], ha uint64, b pentry[V], hb uint64, shift uint, edit uint64) *pnode[V] {
	if shift >= pmaxShift {
		return &pnode[V]{edit: edit, entries: []pentry[V]{a, b}}
	}
	ba, bb := pslot(ha, shift), pslot(hb, shift)
	if ba == bb {
		return &pnode[V]{edit: edit, nodemap: ba, kids: []*pnode[V]{ppair(a, ha, b, hb, shift+pbits, edit)}}
	}
	if ba > bb {
		a, b = b, a
	}
	return &pnode[V]{edit: edit, datamap: ba | bb, entries: []pentry[V]{a, b}}
}

// del removes k and returns its value, if it was there.
func (m *pmap[V]) del(a Address) (V, bool) {
	k := pkeyOf(a)
	return m.delH(k, phashOf(k))
}

func (m *pmap[V]) delH(k pkey, h uint64) (V, bool) {
	old, had := m.getH(k, h)
	if !had {
		return old, false // absent: nothing to copy
	}
	m.root = premove(m.root, h, 0, k, m.token())
	m.n--
	return old, true
}

// remove deletes k, which is present under n, and returns n's replacement
// (nil when empty). A subtree left with one entry and no subtrees is
// pulled up into its parent, so deletions do not leave chains of nodes.
func premove[V comparable](n *pnode[V], h uint64, shift uint, k pkey, edit uint64) *pnode[V] {
	n = pown(n, edit)
	if shift >= pmaxShift {
		for i := range n.entries {
			if n.entries[i].key == k {
				n.entries = slices.Delete(n.entries, i, i+1)
				break
			}
		}
	} else if bit := pslot(h, shift); n.datamap&bit != 0 {
		n.entries = slices.Delete(n.entries, pindex(n.datamap, bit), pindex(n.datamap, bit)+1)
		n.datamap &^= bit
	} else {
		i := pindex(n.nodemap, bit)
		kid := premove(n.kids[i], h, shift+pbits, k, edit)
		switch {
		case kid == nil:
			n.kids = slices.Delete(n.kids, i, i+1)
			n.nodemap &^= bit
		case len(kid.kids) == 0 && len(kid.entries) == 1:
			n.kids = slices.Delete(n.kids, i, i+1)
			n.nodemap &^= bit
			n.datamap |= bit
			n.entries = slices.Insert(n.entries, pindex(n.datamap, bit), kid.entries[0])
		default:
			n.kids[i] = kid
		}
	}
	if len(n.entries) == 0 && len(n.kids) == 0 {
		return nil
	}
	return n
}

// each calls f for every key and value, in no particular order, until f
// returns false.
func (m *pmap[V]) each(f func(Address, V) bool) {
	m.eachKey(func(k *pkey, v V) bool { return f(k.address(), v) })
}

// eachKey is each with the keys as the trie holds them.
func (m *pmap[V]) eachKey(f func(*pkey, V) bool) {
	if m.root != nil {
		m.root.each(f)
	}
}

func (n *pnode[V]) each(f func(*pkey, V) bool) bool {
	for i := range n.entries {
		if !f(&n.entries[i].key, n.entries[i].val) {
			return false
		}
	}
	for _, k := range n.kids {
		if !k.each(f) {
			return false
		}
	}
	return true
}

// equal reports whether m and o hold the same keys and values. Subtrees
// they share are not walked.
func (m *pmap[V]) equal(o *pmap[V]) bool {
	if m.n != o.n {
		return false
	}
	if m.root == o.root {
		return true
	}
	same := true
	m.eachKey(func(k *pkey, v V) bool {
		w, ok := o.getH(*k, phashOf(*k))
		same = ok && w == v
		return same
	})
	return same
}
