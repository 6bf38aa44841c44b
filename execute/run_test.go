package execute

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestNextBuildID(t *testing.T) {
	now := time.UnixMilli(1796627202591)
	for _, c := range []struct{ taken, want string }{
		{"", "1796627202591"},
		{"1796627202591", "1796627202592"},
		{"1796627202595", "1796627202596"},
		{"1796627202000", "1796627202591"}, // taken long ago: the clock is ahead
	} {
		if got := nextBuildID(now, c.taken); got != c.want {
			t.Errorf("nextBuildID(%s) = %s, want %s", c.taken, got, c.want)
		}
	}
}

// Two executes in one millisecond plan the same pod name: the second
// starts again under the next ID instead of failing.
func TestExecuteTakesTheNextBuildIDWhenOneIsTaken(t *testing.T) {
	o, err := prepared(t, sampleTask, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	var names []string
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name
		names = append(names, name)
		if len(names) == 1 {
			return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "pods"}, name)
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, name, nil)
	})
	o.Client, o.DryRun, o.NoCache = client, "none", true
	o.Now = func() time.Time { return time.UnixMilli(1796627202591) }
	err = o.Run(context.Background())
	if want := []string{"one-off-1796627202591", "one-off-1796627202592"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("pods created %v, want %v", names, want)
	}
	if err == nil || !strings.Contains(err.Error(), "one-off-1796627202592") || strings.Contains(err.Error(), "taken") {
		t.Fatalf("Run = %v, want the second pod's own error", err)
	}
}
