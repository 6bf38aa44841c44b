package hijack

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// ForbiddenError names the permission a command lacked and where, so that
// the user can ask for exactly that (docs/rbac.md has the minimal Roles).
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
	return fmt.Sprintf("permission denied: you need %q on %q in %s (docs/rbac.md gives the minimal Role): %v",
		e.Verb, e.Resource, where, e.Err)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// explainForbidden turns an authorization failure into a ForbiddenError.
// An exec that falls back to SPDY loses the API status on the way and only
// its message says "forbidden", hence the second test.
func explainForbidden(err error, namespace, verb, resource string) error {
	if err == nil || !(apierrors.IsForbidden(err) || strings.Contains(err.Error(), " is forbidden: ")) {
		return err
	}
	return &ForbiddenError{Verb: verb, Resource: resource, Namespace: namespace, Err: err}
}
