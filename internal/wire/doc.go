// Package wire reads and writes SocketCluster packets in the default JSON
// codec (sc-formatter): a hand-written scanner for inbound frames that keeps
// payloads as raw JSON slices of the frame (nothing is decoded that the
// server does not need), and appenders that build outbound packets with the
// exact key order of the Node reference.
//
// Absent and null differ everywhere: a nil raw value means "no such key",
// the four bytes `null` mean null.
package wire
