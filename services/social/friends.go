package social

import (
	"context"
	"database/sql"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/internal/sqldb"
	"github.com/surgechat/surge/services/social/socialpb"
)

// Friends. A friend request is pending until its recipient accepts or
// declines it, or a block between the two removes it. Friendship is
// mutual. Errors, besides those of every user RPC (doc.go):
//
//	SendFriendRequest   InvalidArgument  "invalid user id" / "cannot befriend yourself" /
//	                                     "message: at most 256 characters"
//	                    NotFound         "no such user: <id>" (Config.UserExists)
//	                    Unavailable      "user lookup failed"
//	                    FailedPrecondition "blocked" (either way)
//	                    AlreadyExists    "already friends" / "friend request already sent"
//	AcceptFriendRequest NotFound         "no friend request from <id>"
//	                    FailedPrecondition "blocked"
//	DeclineFriendRequest NotFound        "no friend request from <id>"
//	RemoveFriend        NotFound         "not friends"
//	ListFriends         InvalidArgument  "page_size must not be negative" / "invalid page_token"

// MaxRequestMessage is the longest friend request message, in characters.
const MaxRequestMessage = 256

// SendFriendRequest asks req.To to be the caller's friend. If req.To has
// already asked the caller, this accepts that request instead: the two
// become friends, and the request returned is req.To's (its From is not the
// caller), so a client tells the two outcomes apart by From.
func (s *Service) SendFriendRequest(ctx context.Context, req *socialpb.FriendRequestRequest) (*socialpb.FriendRequest, error) {
	out, err := s.sendFriendRequest(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) sendFriendRequest(ctx context.Context, req *socialpb.FriendRequestRequest) (*socialpb.FriendRequest, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	to := req.GetTo()
	if err := checkOther(me, to, "cannot befriend yourself"); err != nil {
		return nil, err
	}
	msg := req.GetMessage()
	if !utf8.ValidString(msg) || utf8.RuneCountInString(msg) > MaxRequestMessage {
		return nil, errf(codes.InvalidArgument, "message: at most %d characters", MaxRequestMessage)
	}
	if err := s.checkUsers(ctx, to); err != nil {
		return nil, err
	}
	var out *socialpb.FriendRequest
	err = s.pairTx(ctx, me, to, func(tx *sql.Tx) error {
		if err := checkBefriend(ctx, tx, me, to); err != nil {
			return err
		}
		if _, ok, err := friendsSince(ctx, tx, me, to); err != nil {
			return err
		} else if ok {
			return errf(codes.AlreadyExists, "already friends")
		}
		theirs, err := request(ctx, tx, to, me)
		if err != nil {
			return err
		}
		if theirs != nil {
			out = theirs
			_, err := befriend(ctx, tx, me, to)
			return err
		}
		if mine, err := request(ctx, tx, me, to); err != nil {
			return err
		} else if mine != nil {
			return errf(codes.AlreadyExists, "friend request already sent")
		}
		out = &socialpb.FriendRequest{From: me, To: to, Message: msg, CreatedAt: now()}
		_, err = tx.ExecContext(ctx, "INSERT INTO friend_requests (from_user, to_user, message, created_at) VALUES (?, ?, ?, ?)",
			out.From, out.To, out.Message, out.CreatedAt)
		switch {
		case sqldb.IsDuplicate(err):
			return errf(codes.AlreadyExists, "friend request already sent")
		case err != nil:
			return fmt.Errorf("insert request: %w", err)
		}
		return nil
	})
	return out, err
}

// AcceptFriendRequest accepts the request that req.User sent the caller.
func (s *Service) AcceptFriendRequest(ctx context.Context, req *socialpb.UserRef) (*socialpb.Friend, error) {
	out, err := s.acceptFriendRequest(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) acceptFriendRequest(ctx context.Context, req *socialpb.UserRef) (*socialpb.Friend, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	from := req.GetUser()
	if err := checkOther(me, from, "cannot befriend yourself"); err != nil {
		return nil, err
	}
	var out *socialpb.Friend
	err = s.pairTx(ctx, me, from, func(tx *sql.Tx) error {
		r, err := request(ctx, tx, from, me)
		if err != nil {
			return err
		}
		if r == nil {
			return errf(codes.NotFound, "no friend request from %s", from)
		}
		if err := checkBefriend(ctx, tx, me, from); err != nil {
			return err
		}
		since, err := befriend(ctx, tx, me, from)
		out = &socialpb.Friend{User: from, Since: since}
		return err
	})
	return out, err
}

// DeclineFriendRequest deletes the request that req.User sent the caller.
// The sender is not told; they may ask again.
func (s *Service) DeclineFriendRequest(ctx context.Context, req *socialpb.UserRef) (*socialpb.Empty, error) {
	err := s.declineFriendRequest(ctx, req)
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

func (s *Service) declineFriendRequest(ctx context.Context, req *socialpb.UserRef) error {
	me, err := callerUser(ctx)
	if err != nil {
		return err
	}
	from := req.GetUser()
	if err := checkOther(me, from, "cannot befriend yourself"); err != nil {
		return err
	}
	return s.pairTx(ctx, me, from, func(tx *sql.Tx) error {
		ok, err := deleteRow(ctx, tx, "friend_requests", "from_user", "to_user", from, me)
		if err != nil {
			return err
		}
		if !ok {
			return errf(codes.NotFound, "no friend request from %s", from)
		}
		return nil
	})
}

// RemoveFriend ends the caller's friendship with req.User, for both.
func (s *Service) RemoveFriend(ctx context.Context, req *socialpb.UserRef) (*socialpb.Empty, error) {
	err := s.removeFriend(ctx, req)
	return &socialpb.Empty{}, s.rpcErr(ctx, err)
}

func (s *Service) removeFriend(ctx context.Context, req *socialpb.UserRef) error {
	me, err := callerUser(ctx)
	if err != nil {
		return err
	}
	other := req.GetUser()
	if err := checkOther(me, other, "cannot unfriend yourself"); err != nil {
		return err
	}
	return s.pairTx(ctx, me, other, func(tx *sql.Tx) error {
		n, err := deletePair(ctx, tx, "friends", "user_a", "user_b", me, other)
		if err != nil {
			return err
		}
		if n == 0 {
			return errf(codes.NotFound, "not friends")
		}
		return nil
	})
}

// ListFriends pages through the caller's friends in user id order.
func (s *Service) ListFriends(ctx context.Context, req *socialpb.PageRequest) (*socialpb.ListFriendsResponse, error) {
	out, err := s.listFriends(ctx, req)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) listFriends(ctx context.Context, req *socialpb.PageRequest) (*socialpb.ListFriendsResponse, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	p, err := parsePage(pageFriends, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	rows, err := s.db.R.QueryContext(ctx, "SELECT user_b, since FROM friends WHERE user_a = ? AND user_b > ? ORDER BY user_b LIMIT ?",
		me, p.after, p.size+1)
	if err != nil {
		return nil, fmt.Errorf("list friends: %w", err)
	}
	defer rows.Close()
	var friends []*socialpb.Friend
	for rows.Next() {
		f := new(socialpb.Friend)
		if err := rows.Scan(&f.User, &f.Since); err != nil {
			return nil, fmt.Errorf("list friends: %w", err)
		}
		friends = append(friends, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list friends: %w", err)
	}
	friends, next := cut(p, pageFriends, friends, (*socialpb.Friend).GetUser)
	return &socialpb.ListFriendsResponse{Friends: friends, NextPageToken: next}, nil
}

// ListFriendRequests returns the caller's pending requests, received and
// sent, newest first. It is not paged.
func (s *Service) ListFriendRequests(ctx context.Context, _ *socialpb.Empty) (*socialpb.ListFriendRequestsResponse, error) {
	out, err := s.listFriendRequests(ctx)
	return out, s.rpcErr(ctx, err)
}

func (s *Service) listFriendRequests(ctx context.Context) (*socialpb.ListFriendRequestsResponse, error) {
	me, err := callerUser(ctx)
	if err != nil {
		return nil, err
	}
	const cols = "SELECT from_user, to_user, message, created_at FROM friend_requests WHERE "
	in, err := s.requests(ctx, cols+"to_user = ? ORDER BY created_at DESC, from_user", me)
	if err != nil {
		return nil, err
	}
	out, err := s.requests(ctx, cols+"from_user = ? ORDER BY created_at DESC, to_user", me)
	if err != nil {
		return nil, err
	}
	return &socialpb.ListFriendRequestsResponse{Incoming: in, Outgoing: out}, nil
}

func (s *Service) requests(ctx context.Context, query string, args ...any) ([]*socialpb.FriendRequest, error) {
	rows, err := s.db.R.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	defer rows.Close()
	var out []*socialpb.FriendRequest
	for rows.Next() {
		r := new(socialpb.FriendRequest)
		if err := rows.Scan(&r.From, &r.To, &r.Message, &r.CreatedAt); err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return out, nil
}

// request returns the pending request from -> to, or nil.
func request(ctx context.Context, tx *sql.Tx, from, to string) (*socialpb.FriendRequest, error) {
	rows, err := tx.QueryContext(ctx, "SELECT from_user, to_user, message, created_at FROM friend_requests WHERE from_user = ? AND to_user = ?", from, to)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	r := new(socialpb.FriendRequest)
	if err := rows.Scan(&r.From, &r.To, &r.Message, &r.CreatedAt); err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	return r, rows.Close()
}

// checkBefriend fails with errBlocked if a or b blocks the other.
func checkBefriend(ctx context.Context, tx *sql.Tx, a, b string) error {
	blocked, err := blockedEither(ctx, tx, a, b)
	if err != nil {
		return fmt.Errorf("read blocks: %w", err)
	}
	if blocked {
		return errBlocked
	}
	return nil
}

// befriend makes a and b friends, deletes their requests to each other,
// and returns since when they are friends (earlier, if they already were).
func befriend(ctx context.Context, tx *sql.Tx, a, b string) (int64, error) {
	if _, err := deletePair(ctx, tx, "friend_requests", "from_user", "to_user", a, b); err != nil {
		return 0, err
	}
	since, ok, err := friendsSince(ctx, tx, a, b)
	if err != nil || ok {
		return since, err
	}
	since = now()
	if _, err := tx.ExecContext(ctx, "INSERT INTO friends (user_a, user_b, since) VALUES (?, ?, ?), (?, ?, ?)",
		a, b, since, b, a, since); err != nil {
		return 0, fmt.Errorf("insert friends: %w", err)
	}
	return since, nil
}
