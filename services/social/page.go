package social

import (
	"encoding/base64"

	"google.golang.org/grpc/codes"

	"github.com/surgechat/surge/internal/wire"
)

// Paging. Every paged list is in id order (friends by user id, groups by
// group id, members by user id), and a page token is the last id of the
// previous page, opaque to clients: base64url of a kind byte and the id.
// The next page starts after that id, so a token stays valid however the
// list changes between pages: nothing is skipped or repeated except what
// was added or removed meanwhile.

// Page sizes.
const (
	DefaultPageSize = 50  // when page_size is 0
	MaxPageSize     = 500 // larger page sizes are cut to this
)

// Token kinds, so that a token of one list is refused by another.
const (
	pageFriends byte = 'f'
	pageGroups  byte = 'g'
	pageMembers byte = 'm'
)

// page is a decoded page request.
type page struct {
	size  int    // rows to return
	after string // the last id of the previous page; "" for the first
}

// parsePage checks a page request: size 0 means DefaultPageSize, more than
// MaxPageSize means MaxPageSize, negative is InvalidArgument, and so is a
// token that is not one of kind's.
func parsePage(kind byte, size int32, token string) (page, error) {
	var p page
	switch {
	case size < 0:
		return p, errf(codes.InvalidArgument, "page_size must not be negative")
	case size == 0:
		p.size = DefaultPageSize
	default:
		p.size = int(min(size, MaxPageSize))
	}
	if token == "" {
		return p, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 2 || b[0] != kind || !wire.ValidID(string(b[1:])) {
		return p, errf(codes.InvalidArgument, "invalid page_token")
	}
	p.after = string(b[1:])
	return p, nil
}

// pageToken returns the token of the page that follows the one ending at
// id.
func pageToken(kind byte, id string) string {
	b := make([]byte, 0, 1+len(id))
	b = append(b, kind)
	b = append(b, id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cut trims rows, fetched with a limit of p.size+1, to p.size, and returns
// the next page's token: empty when rows held no more than p.size. key
// gives a row's id.
func cut[T any](p page, kind byte, rows []T, key func(T) string) ([]T, string) {
	if len(rows) <= p.size {
		return rows, ""
	}
	rows = rows[:p.size]
	return rows, pageToken(kind, key(rows[len(rows)-1]))
}
