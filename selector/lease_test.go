package selector

import (
	"testing"
	"time"
)

func TestLeaseRoundTrips(t *testing.T) {
	l := Lease{Holder: "1796627202591.0a1b2c3d", Expiry: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), Pod: "one-off-1796627202591"}
	got, ok := LeaseOf(map[string]string{AnnotationLease: l.String()})
	if !ok || got != l {
		t.Fatalf("LeaseOf(%q) = %+v, %v; want %+v", l.String(), got, ok, l)
	}
	for _, bad := range []string{"", "holder", "holder yesterday pod"} {
		if got, ok := LeaseOf(map[string]string{AnnotationLease: bad}); ok {
			t.Errorf("LeaseOf(%q) = %+v, want none", bad, got)
		}
	}
	// An older plugin's lease names no pod: it holds until its expiry.
	if got, ok := LeaseOf(map[string]string{AnnotationLease: "h 2026-12-07T09:00:00Z"}); !ok || got.Pod != "" || got.Holder != "h" {
		t.Errorf("a lease without a pod: %+v, %v", got, ok)
	}
}
