package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A cache that a pod still uses stays (Terminating) until the pod ends:
// clear-task-cache names the pod instead of counting it as removed, and the
// claim goes once the pod does.
func TestClearTaskCacheNamesThePodThatHoldsIt(t *testing.T) {
	ns := testCluster.Namespace(t)
	cachePVC(t, ns, "held", "task-cache", map[string]string{"concourse-ci.org/pipeline": "main",
		"concourse-ci.org/job": "unit", "concourse-ci.org/step-name": "test"}, nil)
	user := sleeper(ns, "user")
	user.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "held"}}}}
	if _, err := testCluster.Client.CoreV1().Pods(ns).Create(context.Background(), user, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := run(t, "", "kubectl", "concourse", "ctc", "-n", ns, "-j", "main/unit", "-s", "test", "-y")
	if r.exitCode != 1 || !strings.HasSuffix(r.stdout, "persistentvolumeclaim/held deleted\n0 caches removed\n") ||
		r.stderr != "error: persistentvolumeclaim held is still in use by pod "+ns+"/user: it is removed when the pod ends\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, no cache counted, the pod named", r.exitCode, r.stdout, r.stderr)
	}

	// The pod ends, and the claim goes with it.
	var grace int64
	if err := testCluster.Client.CoreV1().Pods(ns).Delete(context.Background(), "user", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := testCluster.Client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "held", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the claim outlived its pod: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
