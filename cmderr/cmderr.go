// Package cmderr holds the errors that commands return for cli to print,
// each telling cli how: a usage error gets kubectl's "See ... -h" hint, a
// Status is a result that exits quietly with its own code, and a
// ForbiddenError names the permission that was missing. Commands never print
// their own fatal errors or exit; only cli does, once.
package cmderr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// UsageError is a mistake in how a command was called: a bad flag or
// argument, or flags that contradict each other. cli prints it with
// kubectl's hint to the command's help, as kubectl's UsageErrorf does.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage error; nil stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}

// Usagef is Usage(fmt.Errorf(format, a...)).
func Usagef(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// Args makes the errors of a cobra argument check usage errors, so that a
// wrong number of arguments gets the same hint as a bad flag.
func Args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		return Usage(check(cmd, args))
	}
}

// Status is the exit status of something whose status is the command's
// result: hijack's remote process, the build that watch follows, the task
// that execute runs. The command has already shown what it wanted to, so
// cli exits with Code and prints nothing. No other failure may use it: a
// helper script's non-zero exit is an ordinary error with a message.
type Status struct {
	Code   int
	Reason string // what the status stands for, e.g. "build failed"; never printed by cli
	// Explain, when set, is printed as an error line before the exit: a
	// status the user could not read alone (143: the pod was deleted).
	Explain string
}

func (s Status) Error() string {
	if s.Reason != "" {
		return fmt.Sprintf("%s (exit status %d)", s.Reason, s.Code)
	}
	return fmt.Sprintf("exit status %d", s.Code)
}

// RBACDocs is where the minimal Roles are written down: a link, because a
// plugin installed by krew comes without the repository's docs/.
const RBACDocs = "https://github.com/kubectl-concourse/kubectl-concourse/blob/main/docs/rbac.md"

// ForbiddenError names the permission a command lacked and where, so that
// the user can ask for exactly that (RBACDocs has the minimal Roles).
type ForbiddenError struct {
	Verb, Resource string // e.g. create, pods/exec
	Namespace      string // "" for every namespace
	Err            error
}

func (e *ForbiddenError) Error() string {
	where := "namespace " + e.Namespace
	if e.Namespace == "" {
		where = "every namespace (a ClusterRole, because of -A)"
	}
	return fmt.Sprintf("permission denied: you need %q on %q in %s (the minimal Role: %s): %v",
		e.Verb, e.Resource, where, RBACDocs, e.Err)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// ExplainForbidden turns an authorization failure into a ForbiddenError and
// leaves every other error as it is. An exec that falls back to SPDY loses
// the API status on the way and only its message says "forbidden", hence
// the second test.
func ExplainForbidden(err error, namespace, verb, resource string) error {
	if err == nil {
		return nil
	}
	var already *ForbiddenError
	var refused *RefusedError
	if errors.As(err, &already) || errors.As(err, &refused) {
		return err
	}
	if !apierrors.IsForbidden(err) && !forbiddenInWords(err) {
		return err
	}
	return &ForbiddenError{Verb: verb, Resource: resource, Namespace: namespace, Err: err}
}

// forbiddenInWords reads an exec's refused upgrade: client-go's SPDY
// round tripper (and the WebSocket one) gives the API server's Forbidden
// only as text ("unable to upgrade connection: pods "x" is forbidden: User
// ... cannot create resource "pods/exec" ..."), with no status to test.
// This and UpgradeRefusedInWords are the readings of a library's words in
// the plugin; tests pin both to client-go's own.
func forbiddenInWords(err error) bool {
	return strings.Contains(err.Error(), " is forbidden: ")
}

// UpgradeRefusedInWords reads an exec whose upgrade the server answered
// with something else than 101 Switching Protocols: client-go's SPDY round
// tripper says so only in words (podexec then tries WebSocket).
func UpgradeRefusedInWords(err error) bool {
	return strings.Contains(err.Error(), "unable to upgrade connection")
}

// RefusedError is the cluster's refusal of an object for what it holds
// (Pod Security, an admission policy or webhook), not for who asks: no
// Role grants it, and an object without it may pass. ExplainForbidden
// leaves it as it is.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Refused marks err as a RefusedError when the API server refused for a
// reason other than RBAC, whose refusals say who cannot do what ("User
// "x" cannot create resource "pods""); other errors stay as they are.
func Refused(err error) error {
	if err == nil || !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
		return err
	}
	if strings.Contains(err.Error(), " cannot ") {
		return err
	}
	return &RefusedError{Err: err}
}

// Interrupted is the end of a command that a signal interrupted: cli
// cancels every command's context with it as the cause, and a command that
// stops for it returns it (context.Cause(ctx)). cli exits as the signal
// would have made it (128+Signal: 130, 143) and prints no error line: the
// user asked for the stop.
type Interrupted struct{ Signal syscall.Signal }

func (i Interrupted) Error() string { return "interrupted by " + i.Signal.String() }

// Code is the exit status of a process that the signal ended, as a shell
// reports it.
func (i Interrupted) Code() int { return 128 + int(i.Signal) }

// Interruption is what a command whose ctx has ended returns: the cause
// of its end (an Interrupted when a signal ended it), else nil while ctx
// goes on. Commands return it in place of the failures that the end
// itself caused (a watch or a stream cut short), which are no news.
func Interruption(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return context.Cause(ctx)
}
