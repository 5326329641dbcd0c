package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/surgechat/surge/internal/sqldb"
)

// backend is one database behind a Store. The SQL both engines accept lives
// here; what differs between them is in its dialect.
type backend struct {
	d  *dialect
	db *sqldb.DB
	w  *sql.DB // Append; db.W
	r  *sql.DB // Inbox, LastSeq; db.R, the same pool as w on mysql
}

// dialect holds the queries that differ between engines.
type dialect struct {
	// existingSQL returns a query for the (msg_id, owner) pairs, out of n
	// given as 2n arguments (msg_id, owner, msg_id, owner, ...), that are
	// stored. It selects msg_id, owner.
	existingSQL func(n int) string

	// lastSeqsSQL returns a query for the highest seq of each of n owners
	// given as arguments. It selects owner, MAX(seq), the latter possibly
	// NULL or the row missing for an owner with no messages.
	lastSeqsSQL func(n int) string
}

// Statement sizes. Big batches are cut into several statements of at most
// chunkRows rows (or pairs, or owners) and roughly chunkBytes of values,
// which keeps every statement far below MySQL's default max_allowed_packet
// (16 MiB) even when escaping doubles a body, and below SQLite's limit on
// bound parameters (32766).
const (
	chunkRows  = 500
	chunkBytes = 4 << 20
)

const insertPrefix = "INSERT INTO inbox (owner, seq, msg_id, sender, client_msg_id, conv, body, sent_at, stored_at) VALUES "

const insertCols = 9

// emptyBody is stored for a nil Body: the column is NOT NULL and the mysql
// driver sends a nil []byte as NULL.
var emptyBody = []byte{}

type msgKey struct {
	owner string
	id    MsgID
}

// append implements Store.Append for the messages of one backend.
func (b *backend) append(ctx context.Context, msgs []Message) ([]Message, error) {
	for i := range msgs {
		if err := validateMessage(&msgs[i]); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
	}

	// (a) Drop repeats within msgs, keeping the first. out holds copies, so
	// the caller's slice is never written.
	seen := make(map[msgKey]struct{}, len(msgs))
	out := make([]Message, 0, len(msgs))
	for i := range msgs {
		k := msgKey{msgs[i].Owner, msgs[i].ID}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, msgs[i])
	}

	tx, err := b.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed

	// (b) Drop the messages already stored.
	stored, err := b.existing(ctx, tx, out)
	if err != nil {
		return nil, err
	}
	if len(stored) > 0 {
		out = slices.DeleteFunc(out, func(m Message) bool {
			_, ok := stored[msgKey{m.Owner, m.ID}]
			return ok
		})
	}
	if len(out) == 0 {
		return nil, nil
	}

	// (c), (d) Number the rest after each owner's last stored seq.
	last, err := b.lastSeqs(ctx, tx, out)
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMicro()
	for i := range out {
		m := &out[i]
		last[m.Owner]++
		m.Seq = last[m.Owner]
		m.StoredAt = now
	}

	// (e) Insert and commit. A duplicate key now can only come from another
	// writer that committed, or holds, the same keys since our reads.
	if err := b.insert(ctx, tx, out); err != nil {
		return nil, b.conflict("insert", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, b.conflict("commit", err)
	}
	return out, nil
}

// conflict wraps err from step, adding ErrConflict if another writer
// caused it (sqldb.IsConflict: a duplicate key or a deadlock).
func (b *backend) conflict(step string, err error) error {
	if sqldb.IsConflict(err) {
		return fmt.Errorf("%s: %w: %w", step, ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", step, err)
}

// existing returns which messages of msgs are already stored, keyed by
// (owner, id). msgs holds no repeats.
func (b *backend) existing(ctx context.Context, tx *sql.Tx, msgs []Message) (map[msgKey]struct{}, error) {
	var stored map[msgKey]struct{}
	args := make([]any, 0, 2*min(len(msgs), chunkRows))
	for chunk := range slices.Chunk(msgs, chunkRows) {
		args = args[:0]
		for i := range chunk {
			args = append(args, chunk[i].ID[:], chunk[i].Owner)
		}
		rows, err := tx.QueryContext(ctx, b.d.existingSQL(len(chunk)), args...)
		if err != nil {
			return nil, fmt.Errorf("find stored: %w", err)
		}
		for rows.Next() {
			var id sql.RawBytes
			var k msgKey
			if err := rows.Scan(&id, &k.owner); err != nil {
				rows.Close()
				return nil, fmt.Errorf("find stored: %w", err)
			}
			if len(id) != MsgIDLen {
				rows.Close()
				return nil, fmt.Errorf("find stored: msg_id of %d bytes", len(id))
			}
			copy(k.id[:], id)
			if stored == nil {
				stored = make(map[msgKey]struct{})
			}
			stored[k] = struct{}{}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("find stored: %w", err)
		}
		rows.Close()
	}
	return stored, nil
}

// lastSeqs returns the highest stored seq of every owner in msgs; owners
// with none map to 0.
func (b *backend) lastSeqs(ctx context.Context, tx *sql.Tx, msgs []Message) (map[string]uint64, error) {
	last := make(map[string]uint64)
	var owners []any
	for i := range msgs {
		if _, ok := last[msgs[i].Owner]; !ok {
			last[msgs[i].Owner] = 0
			owners = append(owners, msgs[i].Owner)
		}
	}
	for chunk := range slices.Chunk(owners, chunkRows) {
		rows, err := tx.QueryContext(ctx, b.d.lastSeqsSQL(len(chunk)), chunk...)
		if err != nil {
			return nil, fmt.Errorf("last seqs: %w", err)
		}
		for rows.Next() {
			var owner string
			var seq sql.Null[uint64]
			if err := rows.Scan(&owner, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("last seqs: %w", err)
			}
			if _, ok := last[owner]; !ok {
				rows.Close()
				return nil, fmt.Errorf("last seqs: unasked owner %q", owner)
			}
			last[owner] = seq.V
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("last seqs: %w", err)
		}
		rows.Close()
	}
	return last, nil
}

// insert writes msgs in multi-row statements. Rows go in (owner, seq)
// order, so concurrent writers lock shared keys in the same order (fewer
// deadlocks) and each owner's rows land together in the primary key.
func (b *backend) insert(ctx context.Context, tx *sql.Tx, msgs []Message) error {
	order := make([]*Message, len(msgs))
	for i := range msgs {
		order[i] = &msgs[i]
	}
	slices.SortFunc(order, func(x, y *Message) int {
		return cmp.Or(strings.Compare(x.Owner, y.Owner), cmp.Compare(x.Seq, y.Seq))
	})

	args := make([]any, 0, insertCols*min(len(order), chunkRows))
	var q strings.Builder
	for len(order) > 0 {
		n, size := 0, 0
		for n < len(order) && n < chunkRows && (n == 0 || size < chunkBytes) {
			m := order[n]
			size += 2*len(m.Body) + len(m.Owner) + len(m.Sender) + len(m.ClientMsgID) + len(m.Conv) + 100
			n++
		}
		q.Reset()
		q.Grow(len(insertPrefix) + n*20)
		q.WriteString(insertPrefix)
		args = args[:0]
		for i, m := range order[:n] {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?)")
			body := m.Body
			if body == nil {
				body = emptyBody
			}
			args = append(args, m.Owner, m.Seq, m.ID[:], m.Sender, m.ClientMsgID, m.Conv, body, m.SentAt, m.StoredAt)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		order = order[n:]
	}
	return nil
}

const inboxCols = "seq, msg_id, sender, client_msg_id, conv, body, sent_at, stored_at"

const inboxSQL = "SELECT " + inboxCols + " FROM inbox WHERE owner = ? AND seq > ? ORDER BY seq LIMIT ?"

// inbox implements Store.Inbox; limit is positive.
func (b *backend) inbox(ctx context.Context, owner string, after uint64, limit int) ([]Message, error) {
	if after >= math.MaxInt64 {
		return nil, nil // no seq is that high, and not every driver binds it
	}
	rows, err := b.r.QueryContext(ctx, inboxSQL, owner, int64(after), int64(limit))
	if err != nil {
		return nil, err
	}
	return scanMessages(rows, owner, limit)
}

// scanMessages reads the rows of a query selecting inboxCols of owner's
// messages.
func scanMessages(rows *sql.Rows, owner string, limit int) ([]Message, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m := Message{Owner: owner}
		var id sql.RawBytes
		if err := rows.Scan(&m.Seq, &id, &m.Sender, &m.ClientMsgID, &m.Conv, &m.Body, &m.SentAt, &m.StoredAt); err != nil {
			return nil, err
		}
		if len(id) != MsgIDLen {
			return nil, fmt.Errorf("owner %q seq %d: msg_id of %d bytes", owner, m.Seq, len(id))
		}
		copy(m.ID[:], id)
		if out == nil {
			out = make([]Message, 0, min(limit, 256))
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

const lastSeqSQL = "SELECT MAX(seq) FROM inbox WHERE owner = ?"

// lastSeq implements Store.LastSeq.
func (b *backend) lastSeq(ctx context.Context, owner string) (uint64, error) {
	var seq sql.Null[uint64]
	if err := b.r.QueryRowContext(ctx, lastSeqSQL, owner).Scan(&seq); err != nil {
		return 0, err
	}
	return seq.V, nil
}

func (b *backend) ping(ctx context.Context) error { return b.db.Ping(ctx) }

func (b *backend) close() error { return b.db.Close() }
