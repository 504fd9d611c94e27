package socketcluster

import "sync/atomic"

// subSet is a channel's set of subscribed sockets, built for fan-out: add
// and remove cost O(1) amortised (called under the channel's lock), and a
// publish reads it with view, without any lock and without copying.
//
// Sockets live in the slots of an array; a removed socket's slot is
// cleared (nil). A map from socket to slot makes removal O(1) in arrays
// of more than smallSet slots; smaller ones are searched. An array is never reordered: a full one is replaced by a
// new one with the live sockets packed and room for as many again, and so
// is one in which fewer than a quarter of the slots are live (so a publish
// never scans mostly empty slots). Between two such rebuilds at least as
// many adds or removes happen as there are live sockets, so each costs O(1)
// amortised. A publish iterates the array it loaded: a socket added
// meanwhile (in a later slot or a new array) is not seen, and one removed
// meanwhile may still get the message; both raced with the publish. A
// socket is never seen twice.
type subSet struct {
	arr   atomic.Pointer[subArray]
	n     int             // members; writers only
	index map[*Socket]int // slot of each member, when the array has more than smallSet slots; writers only
}

// smallSet is the largest array searched slot by slot instead of through
// an index: most channels have few subscribers, and a map per channel
// would cost them more than the search.
const smallSet = 8

type subArray struct {
	used  atomic.Int64 // slots in use, live or cleared; it only grows
	slots []atomic.Pointer[Socket]
}

// len is the number of sockets (writers only).
func (ss *subSet) len() int { return ss.n }

// find returns the slot of s.
func (ss *subSet) find(s *Socket) (int, bool) {
	if ss.index != nil {
		i, ok := ss.index[s]
		return i, ok
	}
	if a := ss.arr.Load(); a != nil {
		for i := range int(a.used.Load()) {
			if a.slots[i].Load() == s {
				return i, true
			}
		}
	}
	return 0, false
}

// add adds s (a no-op when present).
func (ss *subSet) add(s *Socket) {
	if _, ok := ss.find(s); ok {
		return
	}
	a := ss.arr.Load()
	if a == nil || int(a.used.Load()) == len(a.slots) {
		a = ss.rebuild(2 * (ss.n + 1))
	}
	i := int(a.used.Load())
	a.slots[i].Store(s)
	a.used.Store(int64(i + 1)) // after the slot: a reader that sees it sees s
	ss.n++
	if ss.index != nil {
		ss.index[s] = i
	}
}

// remove removes s (a no-op when absent).
func (ss *subSet) remove(s *Socket) {
	i, ok := ss.find(s)
	if !ok {
		return
	}
	a := ss.arr.Load()
	a.slots[i].Store(nil)
	ss.n--
	if ss.index != nil {
		delete(ss.index, s)
	}
	switch {
	case ss.n == 0:
		ss.arr.Store(nil)
		ss.index = nil
	case len(a.slots) > 2*smallSet && ss.n < len(a.slots)/4:
		ss.rebuild(2 * ss.n)
	}
}

// rebuild replaces the array by one of the given capacity holding the
// members, packed in their order, and returns it. The index is made anew
// (a map never shrinks), or dropped for a small array.
func (ss *subSet) rebuild(capacity int) *subArray {
	b := &subArray{slots: make([]atomic.Pointer[Socket], max(capacity, 4))}
	ss.index = nil
	if len(b.slots) > smallSet {
		ss.index = make(map[*Socket]int, ss.n+1)
	}
	j := 0
	if old := ss.arr.Load(); old != nil {
		for i := range int(old.used.Load()) {
			if s := old.slots[i].Load(); s != nil {
				b.slots[j].Store(s)
				if ss.index != nil {
					ss.index[s] = j
				}
				j++
			}
		}
	}
	b.used.Store(int64(j))
	ss.arr.Store(b)
	return b
}

// view returns the slots to read for a fan-out (nil entries are sockets
// that left); safe without a lock, concurrently with add and remove.
func (ss *subSet) view() []atomic.Pointer[Socket] {
	a := ss.arr.Load()
	if a == nil {
		return nil
	}
	return a.slots[:a.used.Load()]
}
