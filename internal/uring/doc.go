// Package uring sends to many sockets with one system call: a minimal
// io_uring submission ring (Linux 5.6 and later) carrying IORING_OP_SEND
// requests, each non-blocking (MSG_DONTWAIT), so that a batch never waits
// for a slow peer: a socket whose send buffer is full completes at once
// with EAGAIN and the caller writes to it another way.
//
// Why: delivering one publication to N idle subscribers costs N write(2)
// calls, and at moderate rates each is also a goroutine wake-up; the
// kernel's per-call entry and exit, not the copy, is most of it.
// Submitting the N sends with one io_uring_enter cut the CPU per delivery
// of the benchmark tool's minimal server by more than half
// (docs/performance.md, "io_uring submission batching").
//
// It is deliberately small: sends only, one batch at a time per Ring,
// submitted and completed within Send (non-blocking sends complete inline).
// Where io_uring is missing or forbidden (other systems, old kernels,
// kernel.io_uring_disabled, container seccomp profiles), New fails and
// callers keep their write(2) path.
package uring

// Unknown is the result Send leaves for a send whose outcome it could not
// learn (io_uring_enter failed): it may or may not have gone out. It is
// outside the range of results (bytes sent, or a negative errno).
const Unknown = -1 << 31
