package gc

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

func TestGCRemovesCachesUnusedForDays(t *testing.T) {
	cache := map[string]string{selector.LabelManagedBy: selector.ManagedByPlugin, selector.LabelVolumeType: selector.VolumeTypeInputCache}
	claim := func(name string, created, used time.Duration, lease string) *corev1.PersistentVolumeClaim {
		m := meta("ci", name, created, cache)
		m.Annotations = map[string]string{selector.AnnotationLastUsed: now.Add(-used).Format(time.RFC3339)}
		if lease != "" {
			m.Annotations[selector.AnnotationLease] = lease
		}
		return &corev1.PersistentVolumeClaim{ObjectMeta: m}
	}
	someoneElses := &corev1.PersistentVolumeClaim{ObjectMeta: meta("ci", "data", 30*24*time.Hour, nil)}
	o, client, out, _ := testOptions(
		claim("stale", 30*24*time.Hour, 8*24*time.Hour, ""),
		claim("fresh", 30*24*time.Hour, 24*time.Hour, ""),
		claim("held", 30*24*time.Hour, 8*24*time.Hour, "123 "+now.Add(time.Hour).Format(time.RFC3339)),
		claim("expired-lease", 30*24*time.Hour, 8*24*time.Hour, "123 "+now.Add(-time.Hour).Format(time.RFC3339)),
		someoneElses)
	o.CachesUnusedFor = DefaultCachesUnusedFor
	if err := o.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	claims, err := client.CoreV1().PersistentVolumeClaims("ci").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range claims.Items {
		left = append(left, c.Name)
	}
	if got, want := left, []string{"data", "fresh", "held"}; !equal(got, want) {
		t.Errorf("left %v, want %v; gc said:\n%s", got, want, out)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDaysFlag(t *testing.T) {
	tests := []struct {
		in, want string
		d        time.Duration
	}{
		{"7d", "7d", 7 * 24 * time.Hour},
		{"1.5d", "36h0m0s", 36 * time.Hour},
		{"12h", "12h0m0s", 12 * time.Hour},
		{"0", "0s", 0},
	}
	for _, tt := range tests {
		var d days
		if err := d.Set(tt.in); err != nil || time.Duration(d) != tt.d || d.String() != tt.want {
			t.Errorf("Set(%q) = %v, %v (%s); want %v (%s)", tt.in, time.Duration(d), err, d.String(), tt.d, tt.want)
		}
	}
	var d days
	if err := d.Set("a week"); err == nil {
		t.Errorf("Set(%q) succeeded", "a week")
	}
}
