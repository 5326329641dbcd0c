// Package store persists inboxes: per-owner, gap-free sequences of messages.
//
// A Store is safe for concurrent use. Every method takes the Kafka partition
// that owns the owner, so an implementation may shard partitions across
// databases; the caller guarantees that an owner always maps to one partition.
package store

import (
	"context"
	"errors"
)

// MsgIDLen is the length of a message id in bytes.
const MsgIDLen = 16

// MsgID identifies a message. It is derived from (sender, destination,
// client message id), so a retried send has the same id as the original.
type MsgID [MsgIDLen]byte

// Message is one entry of an owner's inbox.
type Message struct {
	Owner       string // inbox owner: the user who receives this entry
	Seq         uint64 // position in the owner's inbox, from 1, gap-free; set by Append
	ID          MsgID  // de-duplication key within the owner's inbox
	Sender      string // user who sent the message
	ClientMsgID string // the sender's id for the message
	Conv        string // conversation, from the owner's point of view: the peer user for a direct message
	Body        []byte // message body as sent, UTF-8 text
	SentAt      int64  // unix microseconds at which the edge accepted the send
	StoredAt    int64  // unix microseconds at which the message was stored; set by Append
}

// ErrConflict reports that another writer stored a sequence number this
// writer was about to assign: the partition has moved to another shard.
var ErrConflict = errors.New("store: sequence conflict (partition owned elsewhere)")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store: closed")

// Store is the inbox store.
type Store interface {
	// Append stores msgs, all belonging to partition part, in one
	// transaction. Messages whose (Owner, ID) is already stored, or repeated
	// within msgs, are dropped. The rest are numbered in order, each owner
	// continuing from its last stored sequence, and returned with Seq and
	// StoredAt set. If another writer stored a conflicting sequence, nothing
	// is stored and the error wraps ErrConflict.
	Append(ctx context.Context, part int32, msgs []Message) ([]Message, error)

	// AppendParts is Append for several partitions at once, msgs[i]
	// belonging to parts[i], with one transaction per database behind them:
	// a shard's group commit of a whole poll. It returns, for each
	// partition, the stored messages or the error of its database's
	// transaction, in which case nothing of that database's partitions was
	// stored; the caller learns which partition conflicted by appending
	// them one at a time.
	AppendParts(ctx context.Context, parts []int32, msgs [][]Message) ([][]Message, []error)

	// Inbox returns up to limit messages of owner with Seq > after, in
	// sequence order.
	Inbox(ctx context.Context, part int32, owner string, after uint64, limit int) ([]Message, error)

	// Conversation returns a page of owner's messages in one conversation
	// (all of them when q.Conv is empty), in sequence order, and whether
	// more lie beyond the page in the direction it was read.
	Conversation(ctx context.Context, part int32, owner string, q ConvQuery) ([]Message, bool, error)

	// LastSeq returns the owner's highest stored sequence, or 0.
	LastSeq(ctx context.Context, part int32, owner string) (uint64, error)

	// Ping checks that every backing database answers.
	Ping(ctx context.Context) error

	// Close releases the store.
	Close() error
}

// ConvQuery selects a page of a conversation. With After (or Since) the
// page reads forwards from there; otherwise it reads backwards from Before,
// or from the newest message when Before is 0.
type ConvQuery struct {
	Conv   string // the conversation; "" means every message of the owner
	After  uint64 // only messages with a higher sequence
	Before uint64 // only messages with a lower sequence; 0 means no bound
	Since  int64  // only messages stored at or after this unix microsecond
	Until  int64  // only messages stored before this unix microsecond; 0 means no bound
	Limit  int    // page size; at least 1
}
