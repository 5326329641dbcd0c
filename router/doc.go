// Package router maps owners to partitions (the consistent-hash ring) and
// routes deliveries from shards to the edges that hold a user's sessions.
package router
