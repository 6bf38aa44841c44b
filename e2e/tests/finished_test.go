package tests

// Finished steps (issue 10): a step that wrote files to an emptyDir and to
// a claim and then failed. download brings both trees back byte for byte,
// hijack --debug enters a copy from the step's own image that sees both,
// and logs prints what it said; a user without the node-level rights gets
// the claim's tree and one clear error about the rest.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/nodekind"
	"github.com/kubectl-concourse/kubectl-concourse/e2e/realnode"
)

// annotationKeepVolumes stands for the moments before a kubelet tears a
// finished pod's volumes down (e2e/nodeagent: AnnotationKeepTerminatedPodVolumes).
const annotationKeepVolumes = "testcluster.kubectl-concourse.dev/keep-terminated-pod-volumes"

// failedStepScript writes a tree into the working directory (an emptyDir)
// and one into the claim beside it, says so, and fails.
const failedStepScript = `set -e
mkdir -p src/deep empty ../cache/bin
printf 'hello\n' >hello.txt
seq 1 50000 >src/numbers
printf '\000\001\002\377binary' >src/deep/blob
chmod 0600 src/deep/blob
ln -s ../hello.txt src/link
seq 1 10000 | sed 's/$/ cached/' >../cache/index
printf '#!/bin/sh\necho tool\n' >../cache/bin/tool
chmod 0755 ../cache/bin/tool
echo "compiling in $(pwd)"
echo "warning: something" >&2
exit 3`

// failedStep is a step pod of main/test #1, step "unit", on image, in
// /tmp/build/work (an emptyDir) with claim "cache" at /tmp/build/cache,
// that ran script and ended.
func failedStep(t *testing.T, ns, image string, keepVolumes bool, script string) *corev1.Pod {
	t.Helper()
	createClaim(t, ns, "cache")
	pod := stepPod(ns, step{name: "unit-1", pipeline: "main", job: "test", build: "1", step: "unit",
		image: image, workingDir: "/tmp/build/work", command: []string{"sh", "-c", script}})
	if keepVolumes {
		pod.Annotations[annotationKeepVolumes] = "true"
	}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "STEP_SECRET_SAUCE", Value: "ketchup"}}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "cache", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache"}}},
	}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{
		{Name: "work", MountPath: "/tmp/build/work"}, {Name: "cache", MountPath: "/tmp/build/cache"}}
	return createPod(t, pod, func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return p.Status.Phase == corev1.PodFailed && len(s) == 1 && s[0].State.Terminated != nil && s[0].State.Terminated.ExitCode == 3
	})
}

// kubeletRoot is where the kubelet of pod's node keeps its pods, seen from
// this machine, and the flags the plugin needs to find it. A real node's
// kubelet tells the plugin its --root-dir (/flagz through the API server's
// node proxy): no flag. The agent's root is its state directory, and the
// plugin cannot ask the agent (the API server does not proxy to a node at
// a loopback address): --kubelet-dir.
func kubeletRoot(t *testing.T, pod *corev1.Pod) (onHost string, flags []string) {
	t.Helper()
	node, err := testCluster.Client.CoreV1().Nodes().Get(context.Background(), pod.Spec.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[nodekind.Label] == string(nodekind.Kubelet) {
		return realnode.KubeletDir(testCluster.Dir, node.Name), nil
	}
	dir := filepath.Join(testCluster.Dir, "nodes", node.Name)
	return dir, []string{"--kubelet-dir", dir}
}

// onRealNode says whether pod runs on a real kubelet.
func onRealNode(t *testing.T, pod *corev1.Pod) bool {
	t.Helper()
	_, flags := kubeletRoot(t, pod)
	return flags == nil
}

// emptyDirOnNode is where pod's emptyDir name is on its node's disk.
func emptyDirOnNode(t *testing.T, pod *corev1.Pod, name string) string {
	t.Helper()
	root, _ := kubeletRoot(t, pod)
	return filepath.Join(root, "pods", string(pod.UID), "volumes", "kubernetes.io~empty-dir", name)
}

// workTree is the step's working directory (emptyDir work) as it is on
// the node's disk: what a download must bring back.
func workTree(t *testing.T, pod *corev1.Pod) map[string]string {
	t.Helper()
	work := localTree(t, emptyDirOnNode(t, pod, "work"))
	if len(work) < 6 {
		t.Fatalf("the step wrote less than expected: %v", work)
	}
	return work
}

// cacheTree is the claim "cache" as it is on its volume's disk.
func cacheTree(t *testing.T, pod *corev1.Pod) map[string]string {
	t.Helper()
	pvc, err := testCluster.Client.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(context.Background(), "cache", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv, err := testCluster.Client.CoreV1().PersistentVolumes().Get(context.Background(), pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cache := localTree(t, pv.Spec.HostPath.Path)
	if len(cache) < 4 {
		t.Fatalf("the step wrote less than expected: %v", cache)
	}
	return cache
}

// pluginPods lists the pods of the plugin's own left in ns.
func pluginPods(t *testing.T, ns string) []string {
	t.Helper()
	pods, err := testCluster.Client.CoreV1().Pods(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=kubectl-concourse"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		names = append(names, p.Name)
	}
	return names
}

// downloadStep runs `kubectl concourse download` of main/test #1's step
// (pod), with kubeletRoot's flags unless args give one.
func downloadStep(t *testing.T, kubeconfig string, pod *corev1.Pod, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := []string{"concourse", "download", "-n", pod.Namespace, "-j", "main/test", "-b", "1", "-s", "unit", "-q"}
	if !slices.Contains(args, "--kubelet-dir") {
		_, flags := kubeletRoot(t, pod)
		base = append(base, flags...)
	}
	cmd := testCluster.Command(ctx, "kubectl", append(base, args...)...)
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig) // the last one wins
	}
	return runCmd(t, cmd, "")
}

// On the agent only: a real kubelet tears a finished pod's emptyDirs down
// at once (TestFinishedDownloadAfterTheKubeletsTeardown), and the agent
// keeps them for the moments before.
func TestFinishedDownloadBringsBackBothTrees(t *testing.T) {
	ns := testCluster.Namespace(t)
	pod := failedStep(t, ns, "busybox", true, failedStepScript)
	work, cache := workTree(t, pod), cacheTree(t, pod)

	dest := t.TempDir()
	// The working directory's tree, named as in the step.
	if r := downloadStep(t, "", pod, ".", dest); r.exitCode != 0 {
		t.Fatalf("download of the working directory: exit %d: %s", r.exitCode, r.stderr)
	}
	if got := localTree(t, filepath.Join(dest, "work")); !equalTrees(got, work) {
		t.Errorf("the emptyDir's tree came back as\n%v\nwant\n%v", got, work)
	}
	if r := downloadStep(t, "", pod, "/tmp/build/cache", dest); r.exitCode != 0 {
		t.Fatalf("download of the claim: exit %d: %s", r.exitCode, r.stderr)
	}
	if got := localTree(t, filepath.Join(dest, "cache")); !equalTrees(got, cache) {
		t.Errorf("the claim's tree came back as\n%v\nwant\n%v", got, cache)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "work", "src", "deep", "blob")); err != nil || string(b) != "\x00\x01\x02\xffbinary" {
		t.Errorf("blob = %q, %v", b, err)
	}
	// A file the step left in its image's filesystem died with it.
	r := downloadStep(t, "", pod, "/etc/hostname", dest)
	if r.exitCode != 1 || strings.Count(r.stderr, "error: ") != 1 || !strings.Contains(r.stderr, "container's own filesystem") ||
		!strings.Contains(r.stderr, "/tmp/build/cache") {
		t.Errorf("outside the volumes: exit %d, stderr %q", r.exitCode, r.stderr)
	}
	if left := pluginPods(t, ns); len(left) > 0 {
		t.Errorf("helper pods left behind: %v", left)
	}
}

// equalTrees compares two localTree results, the top directory's mode
// aside (the download's top directory is made here).
func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if k != "." && b[k] != v {
			return false
		}
	}
	return true
}

// On a kubelet (and the agent, as a kubelet does), a finished pod's
// emptyDirs are torn down at once: the download says so, and the claim is
// still there.
func TestFinishedDownloadAfterTheKubeletsTeardown(t *testing.T) {
	onEachNodeKind(t, testFinishedDownloadAfterTheKubeletsTeardown)
}

func testFinishedDownloadAfterTheKubeletsTeardown(t *testing.T, ns string) {
	pod := failedStep(t, ns, "busybox", false, failedStepScript)
	emptyDir := emptyDirOnNode(t, pod, "work")
	deadline := time.Now().Add(30 * time.Second)
	for _, err := os.Stat(emptyDir); err == nil; _, err = os.Stat(emptyDir) {
		if time.Now().After(deadline) {
			t.Fatalf("the finished pod's emptyDir %s is still there", emptyDir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dest := t.TempDir()
	r := downloadStep(t, "", pod, "src", dest)
	if r.exitCode != 1 || strings.Count(r.stderr, "error: ") != 1 || !strings.Contains(r.stderr, "removed when the pod finished") {
		t.Errorf("the torn-down emptyDir: exit %d, stderr %q", r.exitCode, r.stderr)
	}
	if r := downloadStep(t, "", pod, "../cache/index", dest); r.exitCode != 0 {
		t.Fatalf("the claim's file: exit %d: %s", r.exitCode, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "index")); err != nil || !strings.HasSuffix(string(b), "10000 cached\n") {
		t.Errorf("index: %v, %d bytes", err, len(b))
	}
	if left := pluginPods(t, ns); len(left) > 0 {
		t.Errorf("helper pods left behind: %v", left)
	}
}

// restrictedUser makes a user with the artifacts and hijack --debug Roles
// of docs/rbac.md in ns, and nothing on nodes.
func restrictedUser(t *testing.T, ns, user string) string {
	return userWithRole(t, ns, user,
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "create", "delete"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}})
}

// restrictHostPaths makes ns refuse pods with host paths, as most clusters
// do for their users: Pod Security "baseline".
func restrictHostPaths(t *testing.T, ns string) {
	t.Helper()
	kubectl(t, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=baseline")
}

func TestFinishedDownloadWithoutNodeRights(t *testing.T) {
	onEachNodeKind(t, testFinishedDownloadWithoutNodeRights)
}

func testFinishedDownloadWithoutNodeRights(t *testing.T, ns string) {
	pod := failedStep(t, ns, "busybox", true, failedStepScript)
	cache := cacheTree(t, pod)
	restrictHostPaths(t, ns)
	kubeconfig := restrictedUser(t, ns, "finished-files")

	dest := t.TempDir()
	if r := downloadStep(t, kubeconfig, pod, "/tmp/build/cache", dest); r.exitCode != 0 {
		t.Fatalf("the claim's tree: exit %d: %s", r.exitCode, r.stderr)
	}
	if got := localTree(t, filepath.Join(dest, "cache")); !equalTrees(got, cache) {
		t.Errorf("the claim's tree came back as\n%v\nwant\n%v", got, cache)
	}
	r := downloadStep(t, kubeconfig, pod, "src", dest)
	if r.exitCode != 1 || strings.Count(r.stderr, "error: ") != 1 {
		t.Fatalf("the emptyDir's tree: exit %d, stderr %q; want one error", r.exitCode, r.stderr)
	}
	for _, want := range []string{"/tmp/build/work/src is on /tmp/build/work (emptyDir work)", "read-only host path volume", "refused",
		"(/tmp/build/cache) can still be downloaded", "docs/rbac.md", "PodSecurity"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "src")); err == nil {
		t.Error("something landed for the refused tree")
	}
	if left := pluginPods(t, ns); len(left) > 0 {
		t.Errorf("helper pods left behind: %v", left)
	}
}

// A user who may not create pods gets one error that names the permission.
func TestFinishedDownloadWithoutCreatePods(t *testing.T) {
	ns := testCluster.Namespace(t)
	pod := failedStep(t, ns, "busybox", true, failedStepScript)
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "concourse-artifacts", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		}}
	if _, err := testCluster.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "concourse-artifacts", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "concourse-artifacts"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "artifacts-only"}}}
	if _, err := testCluster.Client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := testCluster.UserKubeconfig("artifacts-only")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`permission denied: you need "create" on "pods" in namespace %s`, ns)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := downloadStep(t, kubeconfig, pod, "/tmp/build/cache", t.TempDir())
		if strings.Contains(r.stderr, `"list" on "pods"`) && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond) // the binding is not in effect yet
			continue
		}
		if r.exitCode != 1 || strings.Count(r.stderr, "error: ") != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr %q; want %q", r.exitCode, r.stderr, want)
		}
		break
	}
}

// Ctrl-C in the middle of a download from a finished step leaves no
// helper behind.
func TestFinishedDownloadInterrupted(t *testing.T) {
	onEachNodeKind(t, testFinishedDownloadInterrupted)
}

func testFinishedDownloadInterrupted(t *testing.T, ns string) {
	pod := failedStep(t, ns, "busybox", true, "head -c 60000000 /dev/urandom >../cache/big; exit 3")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Through the rate-limited link, so that the transfer takes a while.
	_, flags := kubeletRoot(t, pod)
	args := append([]string{"concourse", "download", "-n", ns, "-j", "main/test", "-b", "1", "-s", "unit", "-q"}, flags...)
	cmd := testCluster.Command(ctx, "kubectl", append(args, "--compress", "none", "/tmp/build/cache", t.TempDir())...)
	cmd.Env = append(cmd.Env, "KUBECONFIG="+testCluster.LimitedKubeconfig)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(pluginPods(t, ns)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no helper pod within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // into the wait or the transfer
	if code := interrupt(t, cmd); code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	waitNoDebugPods(t, ns)
}

// A kubelet whose root directory is not where the plugin looks fails the
// helper's mount; the error says what to give.
func TestFinishedDownloadKubeletDirElsewhere(t *testing.T) {
	onEachNodeKind(t, testFinishedDownloadKubeletDirElsewhere)
}

func testFinishedDownloadKubeletDirElsewhere(t *testing.T, ns string) {
	pod := failedStep(t, ns, "busybox", true, failedStepScript)
	r := downloadStep(t, "", pod, "--kubelet-dir", "/var/lib/no-kubelet-here", "src", t.TempDir())
	if r.exitCode != 1 || strings.Count(r.stderr, "error: ") != 1 || !strings.Contains(r.stderr, "hostPath type check failed") ||
		!strings.Contains(r.stderr, "--kubelet-dir") {
		t.Errorf("exit %d, stderr %q", r.exitCode, r.stderr)
	}
	// The claim's files need no node: a wrong kubelet root does not stop them.
	dest := t.TempDir()
	if r := downloadStep(t, "", pod, "--kubelet-dir", "/var/lib/no-kubelet-here", "/tmp/build/cache", dest); r.exitCode != 0 {
		t.Errorf("download of the claim with a wrong kubelet root: exit %d, stderr %q", r.exitCode, r.stderr)
	} else if got := localTree(t, filepath.Join(dest, "cache")); !equalTrees(got, cacheTree(t, pod)) {
		t.Errorf("the claim's tree came back as\n%v", got)
	}
	if left := pluginPods(t, ns); len(left) > 0 {
		t.Errorf("helper pods left behind: %v", left)
	}
}

// A kubelet root elsewhere than the plugin looks stops only what is on the
// node's disk: the debug copy still has the step's claim, its emptyDir
// starts empty, and the one warning says what to give.
func TestFinishedHijackDebugKubeletDirElsewhere(t *testing.T) {
	onEachNodeKind(t, testFinishedHijackDebugKubeletDirElsewhere)
}

func testFinishedHijackDebugKubeletDirElsewhere(t *testing.T, ns string) {
	pod := failedStep(t, ns, "bash", true, failedStepScript)
	r := hijackStep(t, "", pod, "--kubelet-dir", "/var/lib/no-kubelet-here", "--", "sh", "-c", seeBoth)
	if want := "/tmp/build/work\nno-hello\n10000 cached\nketchup\n/bin/bash\n"; r.exitCode != 7 || r.stdout != want {
		t.Errorf("exit %d, stdout %q (want 7, %q), stderr %q", r.exitCode, r.stdout, want, r.stderr)
	}
	if strings.Count(r.stderr, "warning") != 1 || !strings.Contains(r.stderr, "warning: the emptyDirs work start empty") ||
		!strings.Contains(r.stderr, "--kubelet-dir") {
		t.Errorf("stderr %q, want one warning that the emptyDir starts empty, naming --kubelet-dir", r.stderr)
	}
	waitNoDebugPods(t, ns)
}

// hijackStep runs `kubectl concourse hijack --debug` of main/test #1's
// step (pod), with kubeletRoot's flags.
func hijackStep(t *testing.T, kubeconfig string, pod *corev1.Pod, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, flags := kubeletRoot(t, pod)
	base := append([]string{"concourse", "hijack", "-n", pod.Namespace, "-j", "main/test", "-b", "1", "-s", "unit", "--debug"}, flags...)
	cmd := testCluster.Command(ctx, "kubectl", append(base, args...)...)
	if kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+kubeconfig)
	}
	return runCmd(t, cmd, "")
}

// seeBoth prints where the session starts, a file of each tree, the
// step's environment, and whether bash (the bash image's, not busybox's)
// is there.
const seeBoth = `pwd; cat hello.txt 2>/dev/null || echo no-hello; tail -n 1 ../cache/index; echo "$STEP_SECRET_SAUCE"; command -v bash || echo no-bash; exit 7`

// On a real kubelet the step's emptyDir is gone by then: the copy says
// so, and has the rest.
func TestFinishedHijackDebugRunsTheStepsImage(t *testing.T) {
	onEachNodeKind(t, testFinishedHijackDebugRunsTheStepsImage)
}

func testFinishedHijackDebugRunsTheStepsImage(t *testing.T, ns string) {
	pod := failedStep(t, ns, "bash", true, failedStepScript)
	hello, warning := "hello", ""
	if onRealNode(t, pod) {
		hello, warning = "no-hello", "warning: emptyDir work starts empty: the kubelet of node "+pod.Spec.NodeName+" removed it when the pod finished\n"
	}
	r := hijackStep(t, "", pod, "--", "sh", "-c", seeBoth)
	if want := "/tmp/build/work\n" + hello + "\n10000 cached\nketchup\n/bin/bash\n"; r.exitCode != 7 || r.stdout != want {
		t.Errorf("exit %d, stdout %q (want 7, %q), stderr %q", r.exitCode, r.stdout, want, r.stderr)
	}
	if !strings.Contains(r.stderr, "from image bash") || strings.Count(r.stderr, "warning") != strings.Count(warning, "warning") ||
		!strings.Contains(r.stderr, warning) {
		t.Errorf("stderr %q, want the one warning %q", r.stderr, warning)
	}
	waitNoDebugPods(t, ns)
}

// A step image with no shell and no sleep (the pause program alone) is
// still the copy's: the keeper and the session's sh come from the toolbox.
func TestFinishedHijackDebugShellLessImage(t *testing.T) {
	onEachNodeKind(t, testFinishedHijackDebugShellLessImage)
}

func testFinishedHijackDebugShellLessImage(t *testing.T, ns string) {
	createClaim(t, ns, "cache")
	pod := stepPod(ns, step{name: "unit-1", pipeline: "main", job: "test", build: "1", step: "unit", image: "distroless",
		workingDir: "/tmp/build/work", command: []string{"/pause", "cp", "/etc/group", "/tmp/build/work/group", "exit", "3"}})
	pod.Annotations[annotationKeepVolumes] = "true"
	pod.Spec.Volumes = []corev1.Volume{{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/tmp/build/work"}}
	pod = createPod(t, pod, finished)
	r := hijackStep(t, "", pod, "--", "sh", "-c", `pwd; ls /pause; exit 4`)
	if r.exitCode != 4 || !strings.HasPrefix(r.stdout, "/tmp/build/work\n/pause\n") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
	waitNoDebugPods(t, ns)
}

func TestFinishedHijackDebugInterrupted(t *testing.T) {
	onEachNodeKind(t, testFinishedHijackDebugInterrupted)
}

func testFinishedHijackDebugInterrupted(t *testing.T, ns string) {
	pod := failedStep(t, ns, "bash", true, failedStepScript)
	_, flags := kubeletRoot(t, pod)
	args := append([]string{"concourse", "hijack", "-n", ns, "-j", "main/test", "-b", "1", "-s", "unit", "--debug"}, flags...)
	cmd := startUntil(t, "started\n", "kubectl", append(args, "--", "sh", "-c", "echo started; sleep 60")...)
	if code := interrupt(t, cmd); code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	waitNoDebugPods(t, ns)
}

func TestFinishedHijackDebugWithoutNodeRights(t *testing.T) {
	onEachNodeKind(t, testFinishedHijackDebugWithoutNodeRights)
}

func testFinishedHijackDebugWithoutNodeRights(t *testing.T, ns string) {
	pod := failedStep(t, ns, "bash", true, failedStepScript)
	restrictHostPaths(t, ns)
	kubeconfig := restrictedUser(t, ns, "finished-debug")
	r := hijackStep(t, kubeconfig, pod, "--", "sh", "-c", `pwd; ls -A; tail -n 1 ../cache/index; exit 5`)
	if want := "/tmp/build/work\n10000 cached\n"; r.exitCode != 5 || r.stdout != want {
		t.Errorf("exit %d, stdout %q (want 5, %q), stderr %q", r.exitCode, r.stdout, want, r.stderr)
	}
	if !strings.Contains(r.stderr, "warning: the emptyDirs work start empty") || !strings.Contains(r.stderr, "refused") {
		t.Errorf("stderr %q", r.stderr)
	}
	waitNoDebugPods(t, ns)
}

// logsOf runs `kubectl concourse logs -n ns args...`.
func logsOf(t *testing.T, ns string, args ...string) result {
	t.Helper()
	return run(t, "", "kubectl", append([]string{"concourse", "logs", "-n", ns}, args...)...)
}

func TestFinishedLogs(t *testing.T) {
	onEachNodeKind(t, testFinishedLogs)
}

func testFinishedLogs(t *testing.T, ns string) {
	failedStep(t, ns, "busybox", false, failedStepScript)
	// Its stdout and stderr, in the order the runtime read them.
	r := logsOf(t, ns, "-j", "main/test", "-b", "1", "-s", "unit")
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	slices.Sort(got)
	if r.exitCode != 0 || strings.Join(got, "|") != "compiling in /tmp/build/work|warning: something" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
	r = logsOf(t, ns, "-j", "main/test", "-s", "unit", "--tail", "1", "--timestamps")
	if stamp, line, _ := strings.Cut(r.stdout, " "); r.exitCode != 0 || !slices.Contains(got, strings.TrimSuffix(line, "\n")) || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("--tail 1 --timestamps: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	} else if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
		t.Errorf("--timestamps: %v", err)
	}
}

// tickerScript prints a line every 0.2s for five seconds.
const tickerScript = `i=1; while [ $i -le 25 ]; do echo "tick $i"; i=$((i+1)); sleep 0.2; done`

func TestLogsFollowARunningStep(t *testing.T) {
	onEachNodeKind(t, testLogsFollowARunningStep)
}

func testLogsFollowARunningStep(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "ticker", pipeline: "main", job: "test", build: "1", step: "tick",
		command: []string{"sh", "-c", tickerScript}}), running)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := testCluster.Command(ctx, "kubectl", "concourse", "logs", "-n", ns, "-j", "main/test", "-s", "tick", "-f")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	for want := 1; want <= 25; want++ {
		if !lines.Scan() {
			t.Fatalf("the log ended after %d lines: %v", want-1, lines.Err())
		}
		if got := lines.Text(); got != fmt.Sprintf("tick %d", want) {
			t.Fatalf("line %d = %q", want, got)
		}
		if want == 3 {
			// Lines printed while the step still runs: it follows.
			pod, err := testCluster.Client.CoreV1().Pods(ns).Get(ctx, "ticker", metav1.GetOptions{})
			if err != nil || pod.Status.Phase != corev1.PodRunning {
				t.Fatalf("the step no longer runs at line 3: %v %v", err, podStatus(pod))
			}
		}
	}
	// The step ends, and so does the log.
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f after the step ended: %v", err)
	}
}

func TestLogsTellStepsApart(t *testing.T) {
	onEachNodeKind(t, testLogsTellStepsApart)
}

func testLogsTellStepsApart(t *testing.T, ns string) {
	for _, s := range []step{
		{name: "compile", pipeline: "main", job: "test", build: "2", step: "compile", command: []string{"sh", "-c", "echo compiled"}},
		{name: "test", pipeline: "main", job: "test", build: "2", step: "test", command: []string{"sh", "-c", "echo 'test line 1'; echo 'test line 2'; exit 1"}},
	} {
		createPod(t, stepPod(ns, s), finished) // one after the other, as a build's steps run
	}
	r := logsOf(t, ns, "-j", "main/test", "-b", "2")
	if want := "compile | compiled\ntest    | test line 1\ntest    | test line 2\n"; r.exitCode != 0 || r.stdout != want {
		t.Errorf("exit %d, stdout %q (want %q), stderr %q", r.exitCode, r.stdout, want, r.stderr)
	}
	r = logsOf(t, ns, "-j", "main/test", "--color", "always")
	if !strings.Contains(r.stdout, "compile | \x1b[0mcompiled\n") || !strings.HasPrefix(r.stdout, "\x1b[") {
		t.Errorf("--color always: stdout %q", r.stdout)
	}

	// A Tekton pod: one step per step-* container.
	tekton := stepPod(ns, step{name: "taskrun", pipeline: "main", job: "test", build: "3"})
	tekton.Labels["tekton.dev/taskRun"] = "taskrun"
	delete(tekton.Labels, "concourse-ci.org/step-name")
	tekton.Spec.Containers = []corev1.Container{
		{Name: "step-clone", Image: "busybox", Command: []string{"sh", "-c", "echo cloned"}},
		{Name: "step-build", Image: "busybox", Command: []string{"sh", "-c", "echo built"}},
	}
	createPod(t, tekton, finished)
	r = logsOf(t, ns, "-j", "main/test", "-b", "3")
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	slices.Sort(got)
	if r.exitCode != 0 || strings.Join(got, ",") != "build | built,clone | cloned" {
		t.Errorf("Tekton: exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
}

// Following a whole build: its next step's log comes as the step comes,
// until interrupted.
func TestLogsFollowABuild(t *testing.T) {
	onEachNodeKind(t, testLogsFollowABuild)
}

func testLogsFollowABuild(t *testing.T, ns string) {
	createPod(t, stepPod(ns, step{name: "first", pipeline: "main", job: "test", build: "4", step: "first",
		command: []string{"sh", "-c", "echo one; exec sleep 3600"}}), running)
	cmd, next := startLines(t, "kubectl", "concourse", "logs", "-n", ns, "-j", "main/test", "-f")
	if l := next(); l != "first | one" {
		t.Fatalf("first line %q", l)
	}
	createPod(t, stepPod(ns, step{name: "second", pipeline: "main", job: "test", build: "4", step: "second",
		command: []string{"sh", "-c", "echo two"}}), finished)
	if l := next(); l != "second | two" {
		t.Fatalf("the next step's line %q", l)
	}
	if code := interrupt(t, cmd); code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
}

// A real kubelet tells its root directory to whoever may get nodes/proxy:
// how the plugin finds a finished pod's emptyDirs without --kubelet-dir.
func TestFinishedRealKubeletTellsItsRoot(t *testing.T) {
	if len(testCluster.RealNodes) == 0 {
		t.Skipf("no real node: %s", testCluster.NoRealNodes)
	}
	r := run(t, "", "kubectl", "get", "--raw", "/api/v1/nodes/"+testCluster.RealNodes[0]+"/proxy/flagz")
	if r.exitCode != 0 || !strings.Contains(r.stdout, "root-dir") || !strings.Contains(r.stdout, "/var/lib/kubelet") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.exitCode, r.stdout, r.stderr)
	}
}
