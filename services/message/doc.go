// Package message is the message service: history and sync queries over
// the persisted inboxes, and the server-side publish API (to a user, a
// group or a topic).
//
// Reads go to the inbox store directly. Publishes go through Kafka like
// every client send, keyed by the owner that orders them, so they share
// the sequence numbers, de-duplication and fan-out of the message path;
// a publish returns once the broker has the record. Topic pushes are live
// only: they are never stored.
//
// A Service is safe for concurrent use.
package message
