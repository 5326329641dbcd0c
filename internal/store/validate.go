package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalid reports a message that no backend can hold as given: an empty
// owner, an owner ending in a space, a string that is not UTF-8 or is longer
// than its column (owner 128 characters, sender and client message id 64,
// conversation 130), or a body over 16 MiB - 1 bytes. Append checks every
// message before it touches a database, so a batch holding one is refused
// whole and retrying it cannot help.
var ErrInvalid = errors.New("store: invalid message")

// Column limits, in characters for strings (as VARCHAR counts them) and in
// bytes for the body (MEDIUMBLOB).
const (
	maxOwner       = 128
	maxSender      = 64
	maxClientMsgID = 64
	maxConv        = 130
	maxBody        = 1<<24 - 1
)

// validateMessage checks m against the limits both engines enforce the same
// way, so that sqlite refuses exactly what mysql would.
//
// An owner may not end in a space because MySQL's portable binary
// collation, utf8mb4_bin, is PAD SPACE: it would treat "bob" and "bob " as
// one key, fusing two inboxes.
func validateMessage(m *Message) error {
	if err := checkOwner(m.Owner); err != nil {
		return err
	}
	if len(m.Body) > maxBody {
		return fmt.Errorf("%w: body of %d bytes exceeds %d", ErrInvalid, len(m.Body), maxBody)
	}
	if err := checkText("sender", m.Sender, maxSender); err != nil {
		return err
	}
	if err := checkText("client_msg_id", m.ClientMsgID, maxClientMsgID); err != nil {
		return err
	}
	return checkText("conv", m.Conv, maxConv)
}

// checkOwner reports whether owner can be stored. Inbox and LastSeq use it
// too: an owner that cannot be stored has no messages, and MySQL must not be
// asked for "bob " lest it answer with bob's.
func checkOwner(owner string) error {
	switch {
	case owner == "":
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	case strings.HasSuffix(owner, " "):
		return fmt.Errorf("%w: owner %q ends in a space", ErrInvalid, owner)
	}
	return checkText("owner", owner, maxOwner)
}

func checkText(field, s string, maxChars int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalid, field, s)
	}
	if len(s) > maxChars && utf8.RuneCountInString(s) > maxChars {
		return fmt.Errorf("%w: %s is longer than %d characters", ErrInvalid, field, maxChars)
	}
	return nil
}

// Validate reports, wrapping ErrInvalid, why no backend could store m; a
// caller that must not have a whole batch refused drops such messages first.
func Validate(m *Message) error { return validateMessage(m) }
