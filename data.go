package socketcluster

import "github.com/socketcluster-go/socketcluster/protocol"

// Data is a payload as received from a client: the raw JSON text of the
// value, undecoded (protocol.Data, where its methods are). A nil Data means
// the packet had no "data" key (absent, JavaScript's undefined); Data("null")
// is null.
type Data = protocol.Data

// Undefined, passed as data, means "no value": the packet is sent without a
// "data" key, as JavaScript's undefined. A nil data is sent as null.
var Undefined = protocol.Undefined

// encodeValue turns an application value into the raw JSON sent as the
// data of a packet (protocol.MarshalData).
func encodeValue(v any) ([]byte, error) { return protocol.MarshalData(v) }
