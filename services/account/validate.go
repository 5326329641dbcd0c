package account

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/surgechat/surge/internal/wire"
)

// Limits on what clients send. Lengths of text are in characters (Unicode
// code points), except the avatar URL's, which is in bytes.
const (
	MinUsernameLen    = 3
	MaxUsernameLen    = 32
	MinPasswordLen    = 10
	MaxPasswordLen    = 128
	MaxDisplayNameLen = 64
	MaxBioLen         = 512
	MaxAvatarURLLen   = 512
)

// Roles.
const (
	RoleUser     = "user"     // every account has it
	RoleOperator = "operator" // may change roles; bootstrapped by Config.Operators
)

// ReservedUsernames cannot be registered, unless Config.Operators names
// them: "system" is the sender of server-side publishes, and the rest
// would pass for Surge's own staff.
var ReservedUsernames = []string{"system", "surge", "admin", "administrator", "root", "operator", "support", "security"}

// knownRoles are the roles SetRoles accepts.
var knownRoles = []string{RoleOperator, RoleUser}

// normalizeUsername lower-cases a username and checks its rules: 3 to 32
// characters of a-z, 0-9, '_', '.' and '-', starting with a letter. It
// returns a message for the client when they are broken.
func normalizeUsername(s string) (string, string) {
	s = strings.ToLower(s)
	switch {
	case s == "":
		return "", "username is required"
	case len(s) < MinUsernameLen || len(s) > MaxUsernameLen:
		return "", "username must be 3 to 32 characters long"
	case s[0] < 'a' || s[0] > 'z':
		return "", "username must start with a letter (a-z)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return "", "username may contain only letters a-z, digits 0-9, '_', '.' and '-'"
		}
	}
	if !wire.ValidID(s) { // implied by the rules above; kept as a guard
		return "", "username is not a valid user id"
	}
	return s, ""
}

// checkPassword checks a new password's length.
func checkPassword(p string) string {
	switch n := utf8.RuneCountInString(p); {
	case n < MinPasswordLen:
		return "password must be at least 10 characters long"
	case n > MaxPasswordLen:
		return "password must be at most 128 characters long"
	}
	return ""
}

// checkText checks a profile text field: valid UTF-8, at most max
// characters, and no control characters (line breaks and tabs are allowed
// where multiline is true).
func checkText(field, s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return field + " must be valid UTF-8"
	}
	if utf8.RuneCountInString(s) > max {
		return field + " must be at most " + strconv.Itoa(max) + " characters long"
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return field + " must not contain control characters"
		}
	}
	return ""
}

// checkAvatarURL accepts "" (no avatar) or an absolute http or https URL
// with a host, at most 512 bytes long.
func checkAvatarURL(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > MaxAvatarURLLen {
		return "avatar_url must be at most 512 bytes long"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "avatar_url must be an absolute http:// or https:// URL"
	}
	if u.User != nil {
		return "avatar_url must not contain a user name or password"
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return "avatar_url must not contain spaces or control characters"
		}
	}
	return ""
}

// normalizeRoles checks roles against the known ones and returns them
// sorted, without duplicates, always including RoleUser.
func normalizeRoles(roles []string) ([]string, string) {
	out := []string{RoleUser}
	for _, r := range roles {
		if !slices.Contains(knownRoles, r) {
			return nil, "unknown role " + strconv.Quote(r) + "; roles are " + strings.Join(knownRoles, ", ")
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), ""
}
