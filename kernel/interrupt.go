package kernel

import "context"

// againKey holds, in a command's context, what cli closes on a second
// interruption.
type againKey struct{}

// WithInterruptedAgain is cli's: the first SIGINT or SIGTERM cancels the
// command's context (cmderr.Interrupted); again is closed on the next one.
// Signals are heard in cli alone, so that a command with two stages of
// stopping asks InterruptedAgain instead of hearing them itself.
func WithInterruptedAgain(ctx context.Context, again <-chan struct{}) context.Context {
	return context.WithValue(ctx, againKey{}, again)
}

// InterruptedAgain is closed when the user interrupts a second time, after
// the first cancelled ctx: execute then exits at once instead of waiting
// for its abort. It never fires where cli did not set it (tests).
func InterruptedAgain(ctx context.Context) <-chan struct{} {
	again, _ := ctx.Value(againKey{}).(<-chan struct{})
	return again
}
