package socketcluster

import "sync/atomic"

// subSet is a channel's set of subscribed sockets, built for fan-out: add
// and remove cost O(1) amortised (called under the channel's lock), and a
// publish reads it with view, without any lock and without copying.
//
// Sockets live in the slots of an array; a removed socket's slot is
// cleared (nil). An array is never reordered: a full one is replaced by a
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
	index map[*Socket]int // slot of each socket in arr; writers only
}

type subArray struct {
	used  atomic.Int64 // slots in use, live or cleared; it only grows
	slots []atomic.Pointer[Socket]
}

// len is the number of sockets (writers only).
func (ss *subSet) len() int { return len(ss.index) }

// add adds s (a no-op when present).
func (ss *subSet) add(s *Socket) {
	if _, ok := ss.index[s]; ok {
		return
	}
	if ss.index == nil {
		ss.index = make(map[*Socket]int)
	}
	a := ss.arr.Load()
	if a == nil || int(a.used.Load()) == len(a.slots) {
		a = ss.rebuild(2 * (len(ss.index) + 1))
	}
	i := int(a.used.Load())
	a.slots[i].Store(s)
	a.used.Store(int64(i + 1)) // after the slot: a reader that sees it sees s
	ss.index[s] = i
}

// remove removes s (a no-op when absent).
func (ss *subSet) remove(s *Socket) {
	i, ok := ss.index[s]
	if !ok {
		return
	}
	delete(ss.index, s)
	a := ss.arr.Load()
	a.slots[i].Store(nil)
	switch n := len(ss.index); {
	case n == 0:
		ss.arr.Store(nil)
		ss.index = nil // a map does not shrink: let a big one go
	case len(a.slots) > 16 && n < len(a.slots)/4:
		ss.rebuild(2 * n)
	}
}

// rebuild replaces the array by one of the given capacity holding the live
// sockets, packed in their order, and returns it.
func (ss *subSet) rebuild(capacity int) *subArray {
	b := &subArray{slots: make([]atomic.Pointer[Socket], max(capacity, 4))}
	j := 0
	if old := ss.arr.Load(); old != nil {
		for i := range int(old.used.Load()) {
			if s := old.slots[i].Load(); s != nil {
				b.slots[j].Store(s)
				ss.index[s] = j
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
