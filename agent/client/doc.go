// Package client starts the in-container agent (package agent) for a
// transfer and speaks its protocol: Launch sends the embedded binary over
// one exec and returns a Session, whose methods receive, list, commit and
// send trees. Where the agent cannot run, Launch's error is ErrUnavailable,
// and the caller falls back to its scripts.
package client
