package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

// TestPluginCompletion goes through kubectl's plugin completion (kubectl
// 1.26+): `kubectl __complete concourse ...` runs kubectl_complete-concourse
// from PATH, which asks the plugin and, for Concourse names, the cluster.
func TestPluginCompletion(t *testing.T) {
	// The shim as shipped, on PATH; it finds bin/kubectl-concourse through PATH.
	shimDir := t.TempDir()
	shim := filepath.Join(cluster.RepoRoot(), "kubectl_complete-concourse")
	if err := os.Symlink(shim, filepath.Join(shimDir, "kubectl_complete-concourse")); err != nil {
		t.Fatal(err)
	}
	env := testCluster.Env("PATH=" + shimDir + string(os.PathListSeparator) + testCluster.BinDir +
		string(os.PathListSeparator) + os.Getenv("PATH"))

	// A step pod of the label contract, for the names completed from the cluster.
	ns := testCluster.Namespace(t)
	pod := sleeper(ns, "hello-fetch-1-use-it")
	pod.Labels = map[string]string{
		"app.kubernetes.io/managed-by": "concourse",
		"concourse-ci.org/team":        "main",
		"concourse-ci.org/pipeline":    "hello",
		"concourse-ci.org/job":         "fetch-and-use-ubuntu",
		"concourse-ci.org/build-name":  "1",
		"concourse-ci.org/build-id":    "101",
		"concourse-ci.org/step-name":   "use-it",
		"concourse-ci.org/step-type":   "task",
	}
	createPod(t, pod, func(*corev1.Pod) bool { return true })

	tests := []struct {
		name    string
		args    []string // after `kubectl __complete concourse`
		want    []string
		notWant []string
	}{
		{"subcommands", []string{""}, []string{"completion", "version"}, nil},
		{"prefix", []string{"ver"}, []string{"version"}, []string{"completion"}},
		{"shells", []string{"completion", ""}, []string{"bash", "fish", "powershell", "zsh"}, nil},
		{"kubectl's flags reach the plugin", []string{"version", "--kubec"}, []string{"--kubeconfig"}, nil},
		{"jobs from the cluster", []string{"containers", "-n", ns, "-j", ""}, []string{"hello/fetch-and-use-ubuntu"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"__complete", "concourse"}, tt.args...)
			out := runOK(t, env, filepath.Join(testCluster.BinDir, "kubectl"), args...)
			got := completionNames(out)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("kubectl %s offers %v, want %q among them", strings.Join(args, " "), got, w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(got, w) {
					t.Errorf("kubectl %s offers %v, want no %q", strings.Join(args, " "), got, w)
				}
			}
			if !strings.Contains(out, "\n:") && !strings.HasPrefix(out, ":") {
				t.Errorf("kubectl %s: no directive line in %q", strings.Join(args, " "), out)
			}
		})
	}
}
