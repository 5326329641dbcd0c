// Package social is Surge's social graph service: friend requests, friends,
// blocks, groups, their members and member roles, served over gRPC as
// surge.social.v1.Social (social.proto), and the lookups that the message
// path makes on every send (GetMembership, CheckDirect, ListFriendIDs).
//
// It owns its tables in one database, MySQL/MariaDB or the embedded
// SQLite (internal/sqldb), migrated from migrations/ into the version table
// "social_migrations". It does not own accounts: a user is any id that
// wire.ValidID accepts and that Config.UserExists, when set, confirms.
//
// Who may call what. Every RPC needs a principal from internal/grpcx's auth
// interceptor. The user RPCs act as the token's user. GetGroup and
// ListMembers are for the group's members and for privileged principals:
// a service (grpcx's service token) or a user with the "operator" role.
// The internal RPCs (GetMembership, CheckDirect, ListFriendIDs) are for
// privileged principals only.
//
// Errors are gRPC statuses with a stable code and a short message; each
// file lists those of its RPCs. Every RPC may also fail with
// Unauthenticated (no or a bad token, from the interceptor), Canceled or
// DeadlineExceeded (the caller's context), and Internal "internal error"
// (the database failed; logged and counted in
// surge_social_internal_errors_total, the text kept from the client).
// Every RPC that acts as the caller (all but the internal ones, GetGroup
// and ListMembers) answers a service principal, which has no user, with
// PermissionDenied "a user token is required".
//
// Visibility. To someone who is not a member, a group does not exist:
// every group RPC answers NotFound "no such group", so group ids cannot be
// probed. A member who lacks the role an RPC needs gets PermissionDenied.
//
// Membership versions. Every change of a group's members (create, add,
// remove, leave, disband) increments the group's version in the
// transaction that makes it, under the group row's lock, and after the
// commit Config.OnGroupChange is told the new version. Renames and role
// changes do not change the members and keep the version.
//
// A Service is safe for concurrent use. RPCs block on the database and on
// the two hooks, never on each other except through the database's locks.
package social
