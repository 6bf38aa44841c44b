package kernel

import (
	"context"
	"errors"
	"io"

	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// Resolve finds the target's step containers (selector.Resolve: one LIST,
// or one GET for --pod) in namespace, or in every namespace with -A. A
// refusal names the permission the lookup lacked, where (a
// cmderr.ForbiddenError), whichever command asked.
func Resolve(ctx context.Context, pods corev1client.PodsGetter, namespace string, t selector.Target) ([]selector.Match, error) {
	ms, err := selector.Resolve(ctx, pods, namespace, t)
	if err != nil {
		ns, verb := t.Access(namespace)
		return nil, cmderr.ExplainForbidden(err, ns, verb, "pods")
	}
	return ms, nil
}

// ResolveOne is Resolve, then one of the matches: the only one, else the
// user's choice in fly's chooser when interactive (the list on prompt, the
// answer read from in), else an error that lists the candidates and the
// flags that pick each. A dismissed chooser gives nil and no error: fly
// exits 0 then, and so does the command.
func ResolveOne(ctx context.Context, pods corev1client.PodsGetter, namespace string, t selector.Target, in io.Reader, prompt io.Writer, interactive bool) (*selector.Match, error) {
	ms, err := Resolve(ctx, pods, namespace, t)
	if err != nil {
		return nil, err
	}
	m, err := selector.Choose(ms, in, prompt, interactive)
	if errors.Is(err, selector.ErrNoChoice) {
		return nil, nil
	}
	return m, err
}
