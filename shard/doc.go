// Package shard owns the partitions that a consumer-group member is given:
// for every owner on them it assigns gap-free sequence numbers, drops
// repeats, persists, pushes deliveries to the edges that hold the owner's
// sessions, and keeps presence (who is connected where).
//
// Effects follow one order per fetched batch, which is what makes a crash
// or a rebalance lose nothing and double nothing:
//
//  1. store the batch in one transaction (group commit);
//  2. push what was stored to online sessions, and confirm new sessions;
//  3. produce the records this batch causes on other partitions (the
//     sender's own copy of a direct message) and wait for the broker;
//  4. commit the consumer offsets.
//
// A crash before 1 replays into the same sequence numbers; after it, the
// replay finds the rows stored and skips them (the store de-duplicates on
// (owner, message id) and refuses a second writer of a sequence number).
// Pushing before the commit could show a client a number that a replay
// reassigns, so it never happens.
//
// Run is the only goroutine that touches partition state; Stats and the
// presence Table are safe for concurrent use.
package shard
