package auth

// WellFormedUTF8 lets the external tests read a payload as Node does
// (Buffer.toString('utf8')) before comparing with encoding/json.
var WellFormedUTF8 = toWellFormedUTF8
