// Package jsoncmp holds benchmarks that pick rpcd's JSON handling by
// measurement: rpcd's own envelope scanner (protocol.ParseRequest and
// AppendResponse) against encoding/json and github.com/goccy/go-json decoding
// the same request into a struct with the params kept raw, and encoding the
// same answer.
//
//	cd bench && go test -bench . ./jsoncmp
package jsoncmp
