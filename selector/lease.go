package selector

import (
	"strings"
	"time"
)

// Lease is a run's hold on one of execute's warm input caches, as
// AnnotationLease records it: "<holder> <expiry, RFC 3339> <pod>".
type Lease struct {
	Holder string    // the run: its build ID and random digits
	Expiry time.Time // until when it holds while Pod is not there
	Pod    string    // the build's pod, which uses the cache in place; "" in older leases
}

// LeaseOf reads the lease annotations hold; false when there is none.
func LeaseOf(annotations map[string]string) (Lease, bool) {
	f := strings.Fields(annotations[AnnotationLease])
	if len(f) < 2 {
		return Lease{Holder: strings.Join(f, "")}, false
	}
	expiry, err := time.Parse(time.RFC3339, f[1])
	if err != nil {
		return Lease{Holder: f[0]}, false
	}
	l := Lease{Holder: f[0], Expiry: expiry}
	if len(f) > 2 {
		l.Pod = f[2]
	}
	return l, true
}

// String is the lease as AnnotationLease holds it.
func (l Lease) String() string {
	return l.Holder + " " + l.Expiry.UTC().Format(time.RFC3339) + " " + l.Pod
}
