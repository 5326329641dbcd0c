// Package shard owns the partitions that a consumer-group member is given:
// for every owner on them it assigns gap-free sequence numbers, drops
// repeats, persists, pushes deliveries to the edges that hold the owner's
// sessions, and keeps presence (who is connected where).
//
// Effects follow one order per poll, which is what makes a crash or a
// rebalance lose nothing and double nothing:
//
//  1. store the poll's messages, all partitions at once, in one
//     transaction per database (group commit);
//  2. push what was stored to online sessions, and confirm new sessions;
//  3. produce the records the poll causes on other partitions (the
//     sender's own copy of a direct message, group fan-out, rejections)
//     and wait for the broker;
//  4. commit the consumer offsets.
//
// Steps 3 and 4 of one poll run on a committer goroutine while the next
// poll goes through 1 and 2; polls still commit in order, each after its
// own effects are durable.
//
// A crash before 1 replays into the same sequence numbers; after it, the
// replay finds the rows stored and skips them (the store de-duplicates on
// (owner, message id) and refuses a second writer of a sequence number).
// Pushing before the commit could show a client a number that a replay
// reassigns, so it never happens.
//
// Run is the only goroutine that touches partition state (the committer
// only produces and commits); the presence Table is safe for concurrent
// use.
package shard
