// Package auth issues and verifies Surge's access tokens: JWTs signed with
// HMAC-SHA256 (github.com/golang-jwt/jwt/v5), each naming its signing key in
// the kid header so keys rotate without downtime.
//
// It owns the Keyring (the set of HMAC secrets by kid, one of them active),
// its on-disk JSON form, and the rules a token must pass: algorithm pinned to
// HS256, a kid the ring knows, issuer "surge", a subject, a token id, and
// exp, nbf and iat checked with a small leeway for clock skew. Every key in
// the ring verifies; only the active key signs. Verify's errors match one of
// ErrTokenExpired, ErrUnknownKey or ErrTokenInvalid, and also jwt's own
// sentinel that says why.
//
// A Keyring is safe for concurrent use: Issue and Verify read an immutable
// snapshot of the keys without locking and never block, while Rotate,
// Remove and Save are serialised and swap the snapshot atomically. Only
// Rotate and Save touch the disk.
package auth
