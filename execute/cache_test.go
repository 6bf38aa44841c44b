package execute

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// withDefaultClass is a fake cluster whose admission gives new claims the
// default StorageClass, as the DefaultStorageClass plugin does.
func withDefaultClass() *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "persistentvolumeclaims", func(a k8stesting.Action) (bool, runtime.Object, error) {
		claim := a.(k8stesting.CreateAction).GetObject().(*corev1.PersistentVolumeClaim)
		class := "standard"
		claim.Spec.StorageClassName = &class
		return false, nil, nil
	})
	return c
}

func TestCacheLeases(t *testing.T) {
	now := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	client := withDefaultClass()
	leaser := func(holder string) *cacheLeaser {
		return &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: holder, holdFor: time.Hour, now: func() time.Time { return now }}
	}
	size := func() int64 { return 0 }
	a, b := leaser("a"), leaser("b")
	first, err := a.lease(t.Context(), "repo", size)
	if err != nil || first != cacheClaimName("repo", "me@host", 0) {
		t.Fatalf("lease = %q, %v; want slot 0", first, err)
	}
	second, err := b.lease(t.Context(), "repo", size)
	if err != nil || second != cacheClaimName("repo", "me@host", 1) {
		t.Fatalf("a second run's lease = %q, %v; want slot 1", second, err)
	}
	if err := a.release(t.Context(), []string{first}); err != nil {
		t.Fatal(err)
	}
	if got, err := leaser("c").lease(t.Context(), "repo", size); err != nil || got != first {
		t.Errorf("after the release, lease = %q, %v; want slot 0 again", got, err)
	}
	// b's lease expires: a run after that takes its slot.
	now = now.Add(2 * time.Hour)
	if got, err := leaser("d").lease(t.Context(), "repo", size); err != nil || got != first {
		t.Errorf("after the leases expired, lease = %q, %v; want slot 0", got, err)
	}
	for i := range cacheSlots {
		leaser(string(rune('e'+i))).lease(t.Context(), "repo", size)
	}
	if got, err := leaser("z").lease(t.Context(), "repo", size); err != nil || got != "" {
		t.Errorf("with every slot leased, lease = %q, %v; want none", got, err)
	}
}

func TestCacheWithoutDefaultClass(t *testing.T) {
	client := fake.NewClientset()
	l := &cacheLeaser{client: client, ns: "ns", user: "me@host", holder: "a", holdFor: time.Hour, now: time.Now}
	_, err := l.lease(t.Context(), "repo", func() int64 { return 0 })
	var none errNoClaims
	if !errors.As(err, &none) || none.why != "the cluster has no default StorageClass" {
		t.Errorf("lease = %v, want no default StorageClass", err)
	}
	if claims, _ := client.CoreV1().PersistentVolumeClaims("ns").List(t.Context(), metav1.ListOptions{}); len(claims.Items) != 0 {
		t.Errorf("left %d claims", len(claims.Items))
	}
}
