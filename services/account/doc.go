// Package account is the account service: the gRPC API of account.proto
// (surge.account.v1.Account). It owns users (id, password hash, profile,
// roles) and their refresh tokens, in its own database tables (migrations
// in migrations/, version table "account_migrations"), and it is where
// access tokens are issued.
//
// # Users
//
// A username is 3 to 32 characters of a-z, 0-9, '_', '.' and '-', starting
// with a letter. It is lower-cased at registration and becomes the user's
// id everywhere: the JWT subject, the inbox owner. Passwords are 10 to 128
// characters and are stored as argon2id PHC strings
// ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>", OWASP's parameters by
// default), verified in constant time. The parameters travel in the
// string, so raising Config.Argon2 keeps old hashes working, and each is
// rewritten with the new parameters at the user's next login.
//
// # Tokens
//
// Login returns a short-lived access token (a JWT signed by
// internal/auth's Keyring, with kid; 15 minutes by default) and an opaque
// refresh token (32 random bytes; only its SHA-256 is stored; 30 days by
// default). Each Refresh returns a new pair and marks the presented
// refresh token used. The tokens issued from one login form a family:
// presenting a used token again means it was copied, so the whole family
// is revoked and the caller must log in again. Logout revokes the family
// of the given token, or with all_sessions every token of the caller.
// Access tokens cannot be revoked: a logout, or a role change, reaches
// them when they expire.
//
// # Roles
//
// Every user has the role "user". "operator" may call SetRoles; the
// usernames in Config.Operators get it at registration, which is how the
// first operator comes to exist.
//
// # Login throttle
//
// Failed logins are limited per username and per client address (see
// ThrottleConfig), in memory and per process. An attempt counts when it
// starts and is taken back if it succeeds, so concurrent guesses get no
// more tries than the limit. The client address is the gRPC peer's, or,
// with Config.TrustForwardedFor, the first entry of the "x-forwarded-for"
// metadata that the HTTP gateway sets.
//
// # Errors
//
// Every error a client sees is a gRPC status with a code to act on and a
// message to read; errors.go lists them. Wrong password and unknown user
// are the same error. Server faults are logged and reach the client as
// Internal "internal error".
//
// # Use
//
//	svc, err := account.New(ctx, account.Config{DB: dbConfig, Keys: keyring})
//	srv, err := grpcx.NewServer(grpcx.ServerConfig{
//		Auth:   grpcx.JWTAuth(keyring), // plus a service token if wanted
//		Public: account.PublicMethods,
//	})
//	account.Register(srv, svc)
//	// serve; on shutdown: srv.Shutdown(ctx), then svc.Close()
//
// A Service is safe for concurrent use. No RPC holds a lock while it does
// I/O; password hashing (tens of milliseconds, Argon2.Memory KiB each) is
// bounded by Config.MaxConcurrentHashes and waits for a slot under the
// call's deadline.
package account
