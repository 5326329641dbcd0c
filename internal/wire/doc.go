// Package wire holds Surge's two encodings: the JSON frames that clients and
// the edge exchange over WebSocket (documented in docs/PROTOCOL.md), and the
// binary records that edges and shards exchange through Kafka.
//
// Encoders append to a caller's buffer and allocate nothing; decoders reuse
// the value they decode into where they can. Everything here is safe for
// concurrent use.
package wire
