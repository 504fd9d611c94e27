// Package protocol holds the words of the SocketCluster protocol that the
// server (package socketcluster) and the Go client (package client) share:
// close codes (CloseCode), reserved event names, the error objects that
// cross the wire (Error and the reference's named errors), the raw payload
// type Data and how Go values become payloads (MarshalData), and the
// authentication states. It depends on nothing but the standard library and
// the module's internal JSON helpers, so a program that only uses the
// client does not compile the server.
//
// docs/protocol.md in the repository is the specification these names come
// from; the sections are cited next to each group.
package protocol
