//go:build !linux

package uring

import "errors"

// Ring is not usable on this system.
type Ring struct{}

var errUnsupported = errors.New("uring: io_uring exists on Linux only")

// New fails on this system.
func New(entries uint32) (*Ring, error) { return nil, errUnsupported }

// Close does nothing on this system.
func (r *Ring) Close() {}

// Send fails on this system.
func (r *Ring) Send(fds []int32, bufs [][]byte, res []int32) error { return errUnsupported }
