package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// artifactsPod is a pod whose container "main" runs image with an
// emptyDir at /data as its working directory.
func artifactsPod(ns, name, image string, annotations map[string]string, env ...corev1.EnvVar) *corev1.Pod {
	var grace int64 = 1
	c := corev1.Container{Name: "main", Image: image, WorkingDir: "/data", Env: env,
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}
	if image != "distroless" {
		c.Command = []string{"sleep", "3600"}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers:                    []corev1.Container{c},
			Volumes:                       []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

// concourse runs `kubectl concourse VERB -n ns --pod pod ARGS...`.
func concourse(t *testing.T, verb, ns, pod string, args ...string) result {
	t.Helper()
	return run(t, "", "kubectl", append([]string{"concourse", verb, "-n", ns, "--pod", pod, "-q"}, args...)...)
}

// localTree describes every entry under dir: kind, permission bits, and
// content hash or link target.
func localTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "link " + target
		case fi.IsDir():
			m[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("file %o %x", fi.Mode().Perm(), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// leftovers lists what uploads into dir of the pod's container left beside
// the versions they landed: staging, locks, trash (all of it in the state
// directory .kubectl-concourse/NAME/ of each destination).
func leftovers(t *testing.T, ns, pod, dir string) []string {
	t.Helper()
	out := kubectl(t, "exec", "-n", ns, pod, "--", "sh", "-c",
		`[ -d "$1/.kubectl-concourse" ] || exit 0; find "$1/.kubectl-concourse" -mindepth 2 -maxdepth 2 ! -name 'v.*'`, "sh", dir)
	return strings.Fields(out)
}

func mustWrite(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestArtifactsRoundTrip(t *testing.T) {
	onEachNodeKind(t, testArtifactsRoundTrip)
}

func testArtifactsRoundTrip(t *testing.T, ns string) {
	createPod(t, artifactsPod(ns, "rt", "busybox", nil), running)
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "a.txt"), []byte("hello\n"), 0o640)
	mustWrite(t, filepath.Join(src, "bin", "run"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7919 >> 3)
	}
	mustWrite(t, filepath.Join(src, "deep", "er", "big"), big, 0o600)
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "empty"), 0o750)
	// Symlinks are data, wherever they point: kept as they are both ways.
	for name, target := range map[string]string{"deep/link": "../a.txt", "abs": "/etc/passwd", "deep/up": "../../../x"} {
		if err := os.Symlink(target, filepath.Join(src, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	want := localTree(t, src)

	for _, compress := range []string{"none", "gzip"} {
		t.Run(compress, func(t *testing.T) {
			remoteDir := "in-" + compress
			if r := concourse(t, "upload", ns, "rt", "--container", "main", "--compress", compress, src, remoteDir); r.exitCode != 0 {
				t.Fatalf("upload: exit %d: %s", r.exitCode, r.stderr)
			}
			// What landed in the container, as its own tools see it.
			ls := kubectl(t, "exec", "-n", ns, "rt", "--", "sh", "-c", "cd /data/"+remoteDir+"/src && stat -c '%a %F %n' . empty bin/run deep/link && readlink abs && readlink deep/up && ls -a /data/"+remoteDir)
			for _, w := range []string{"750 directory empty", "755 regular file bin/run", "symbolic link deep/link", "/etc/passwd\n../../../x\n"} {
				if !strings.Contains(ls, w) {
					t.Errorf("container listing lacks %q:\n%s", w, ls)
				}
			}
			if left := leftovers(t, ns, "rt", "/data/"+remoteDir); len(left) > 0 {
				t.Errorf("staging left in the container: %q", left)
			}
			back := t.TempDir()
			if r := concourse(t, "download", ns, "rt", "--compress", compress, remoteDir+"/src", back); r.exitCode != 0 {
				t.Fatalf("download: exit %d: %s", r.exitCode, r.stderr)
			}
			if got := localTree(t, filepath.Join(back, "src")); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the tree:\ngot  %v\nwant %v", got, want)
			}
		})
	}
}

func TestArtifactsUploadIgnoresLikeFly(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "ign", "busybox", nil), running)
	repo := gitRepo(t)
	if r := concourse(t, "upload", ns, "ign", repo, "plain"); r.exitCode != 0 {
		t.Fatalf("upload: exit %d: %s", r.exitCode, r.stderr)
	}
	if r := concourse(t, "upload", ns, "ign", "--include-ignored", repo, "all"); r.exitCode != 0 {
		t.Fatalf("upload --include-ignored: exit %d: %s", r.exitCode, r.stderr)
	}
	plain := kubectl(t, "exec", "-n", ns, "ign", "--", "ls", "-A", "/data/plain/repo")
	all := kubectl(t, "exec", "-n", ns, "ign", "--", "ls", "-A", "/data/all/repo")
	if got, want := strings.Fields(plain), []string{".gitignore", "main.go", "new.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("upload sent %v, want %v", got, want)
	}
	if got, want := strings.Fields(all), []string{".git", ".gitignore", "debug.log", "main.go", "new.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("upload --include-ignored sent %v, want %v", got, want)
	}
}

// evilArchive is what a hostile tar in the container emits: entries that
// try every way out of the destination.
func evilArchive(t *testing.T) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body string) {
		h.Size, h.Mode = int64(len(body)), 0o644
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "./out/"}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "./out/fine"}, "fine")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "./out/up", Linkname: "../../.."}, "")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "./out/up/escaped"}, "evil")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "./out/../../dotdot"}, "evil")
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "/tmp/absolute"}, "evil")
	add(&tar.Header{Typeflag: tar.TypeLink, Name: "./out/hard", Linkname: "/etc/passwd"}, "")
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "./out/abs", Linkname: "/etc"}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestArtifactsHostileTarWritesNothingOutside(t *testing.T) {
	onEachNodeKind(t, testArtifactsHostileTarWritesNothingOutside)
}

func testArtifactsHostileTarWritesNothingOutside(t *testing.T, ns string) {
	// The hostile archive is the container's tar, which only the scripts
	// run; a hostile agent's is transfer's unit test's.
	forceAgent(t, "off")
	// bash looks tar up in PATH (busybox sh would run its own applet), so
	// /hostile/sh -> bash and /hostile/tar is what the plugin's scripts run.
	path := corev1.EnvVar{Name: "PATH", Value: "/hostile:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
	createPod(t, artifactsPod(ns, "evil", "bash", nil, path), running)
	setup := `mkdir -p /hostile /data/out && ln -s /bin/bash /hostile/sh && cat >/hostile/evil.tar &&
printf '#!/bin/bash\ncat /hostile/evil.tar\n' >/hostile/tar && chmod +x /hostile/tar && echo real >/data/out/fine`
	if r := run(t, string(evilArchive(t)), "kubectl", "exec", "-i", "-n", ns, "evil", "--", "/bin/busybox", "sh", "-c", setup); r.exitCode != 0 {
		t.Fatalf("setup: %s", r.stderr)
	}
	base := t.TempDir()
	dest := filepath.Join(base, "a", "b", "dest")
	mustWrite(t, filepath.Join(dest, "keep"), []byte("old"), 0o644)
	before := localTree(t, base)
	r := concourse(t, "download", ns, "evil", "--retries", "0", "out", dest)
	if r.exitCode == 0 {
		t.Fatalf("download of a hostile archive succeeded: %s", r.stderr)
	}
	// Every entry that tries a way out is named; ./out/abs -> /etc is not
	// one (symlinks are data), but the download fails as a whole.
	for _, named := range []string{"../../..", "dotdot", "/tmp/absolute", "/etc/passwd"} {
		if !strings.Contains(r.stderr, named) {
			t.Errorf("stderr does not name %q:\n%s", named, r.stderr)
		}
	}
	if got := localTree(t, base); !reflect.DeepEqual(got, before) {
		t.Errorf("hostile download changed the local side:\ngot  %v\nwant %v", got, before)
	}
	if _, err := os.Lstat("/tmp/absolute"); err == nil {
		t.Errorf("/tmp/absolute was written")
	}
}

func TestArtifactsResumeAfterCut(t *testing.T) {
	// A resume with only the missing entries is the scripts' (the
	// fallback's); the agent sends the whole tree again, which
	// TestAgentDownloadThroughACut tests.
	forceAgent(t, "off")
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "cut", "busybox", map[string]string{
		"testcluster.kubectl-concourse.dev/exec-cut-after-bytes": "700000",
		"testcluster.kubectl-concourse.dev/exec-cut-times":       "2",
	}), running)
	// Ten 256 KiB files of distinct content, made in the container.
	gen := `mkdir -p /data/tree/sub && i=0; while [ $i -lt 10 ]; do yes "line $i" | head -c 262144 >/data/tree/sub/f$i; i=$((i+1)); done`
	kubectl(t, "exec", "-n", ns, "cut", "--", "sh", "-c", gen)
	dest := t.TempDir()
	mustWrite(t, filepath.Join(dest, "tree", "old"), []byte("old"), 0o644)

	r := concourse(t, "download", ns, "cut", "--compress", "none", "tree", dest)
	if r.exitCode != 0 {
		t.Fatalf("download through two cuts: exit %d: %s", r.exitCode, r.stderr)
	}
	if !strings.Contains(r.stderr, "resuming") {
		t.Errorf("no resume reported: %s", r.stderr)
	}
	got := localTree(t, filepath.Join(dest, "tree"))
	if len(got) != 12 || got["old"] != "" {
		t.Errorf("resumed download = %v", got)
	}
	sum := kubectl(t, "exec", "-n", ns, "cut", "--", "sha256sum", "/data/tree/sub/f7")
	if b, _ := os.ReadFile(filepath.Join(dest, "tree", "sub", "f7")); !strings.HasPrefix(sum, fmt.Sprintf("%x", sha256.Sum256(b))) {
		t.Errorf("f7 differs from the container's")
	}

	// Every session cut and no retries left: the old tree stays.
	kubectl(t, "annotate", "-n", ns, "pod", "cut", "--overwrite", "testcluster.kubectl-concourse.dev/exec-cut-times=1000")
	before := localTree(t, dest)
	kubectl(t, "exec", "-n", ns, "cut", "--", "sh", "-c", "echo changed >/data/tree/sub/f0")
	if r := concourse(t, "download", ns, "cut", "--compress", "none", "--retries", "1", "tree", dest); r.exitCode == 0 {
		t.Fatalf("download through endless cuts succeeded")
	}
	if got := localTree(t, dest); !reflect.DeepEqual(got, before) {
		t.Errorf("failed download changed the destination")
	}
}

func TestArtifactsDistrolessThroughHelper(t *testing.T) {
	onEachNodeKind(t, testArtifactsDistrolessThroughHelper)
}

func testArtifactsDistrolessThroughHelper(t *testing.T, ns string) {
	createPod(t, artifactsPod(ns, "dl", "distroless", nil), running)
	src := filepath.Join(t.TempDir(), "payload")
	mustWrite(t, filepath.Join(src, "x", "data.bin"), bytes.Repeat([]byte("distroless"), 100000), 0o644)
	if r := concourse(t, "upload", ns, "dl", src, "/data"); r.exitCode != 0 {
		t.Fatalf("upload to distroless: exit %d: %s", r.exitCode, r.stderr)
	}
	back := t.TempDir()
	if r := concourse(t, "download", ns, "dl", "/data/payload", back); r.exitCode != 0 {
		t.Fatalf("download from distroless: exit %d: %s", r.exitCode, r.stderr)
	}
	if got, want := localTree(t, filepath.Join(back, "payload")), localTree(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip through the helper: got %v, want %v", got, want)
	}
	// Outside the volumes the helper sees nothing: said, not guessed.
	r := concourse(t, "download", ns, "dl", "/etc/passwd", back)
	if r.exitCode == 0 || !strings.Contains(r.stderr, "not on a volume") {
		t.Errorf("download of a path outside the volumes: exit %d: %s", r.exitCode, r.stderr)
	}
	pod, err := testCluster.Client.CoreV1().Pods(ns).Get(context.Background(), "dl", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.EphemeralContainers) == 0 {
		t.Errorf("no helper container was added")
	}
	// Each transfer's helper ends with it: none may be left running with
	// the step's volumes mounted.
	waitPod(t, ns, "dl", func(p *corev1.Pod) bool {
		if len(p.Status.EphemeralContainerStatuses) != len(p.Spec.EphemeralContainers) {
			return false
		}
		for _, s := range p.Status.EphemeralContainerStatuses {
			if s.State.Terminated == nil {
				return false
			}
		}
		return true
	})
	// One helper per transfer: the upload's mounts /data writable, the
	// download's (which only reads) read-only. The API keeps no order.
	if n := len(pod.Spec.EphemeralContainers); n != 2 {
		t.Fatalf("%d helper containers, want 2 (upload, download)", n)
	}
	var readOnly []bool
	for _, ec := range pod.Spec.EphemeralContainers {
		for _, vm := range ec.VolumeMounts {
			if vm.MountPath == "/data" {
				readOnly = append(readOnly, vm.ReadOnly)
			}
		}
	}
	if len(readOnly) != 2 || readOnly[0] == readOnly[1] {
		t.Errorf("/data read-only in the helpers: %v, want one writable (upload) and one read-only (download)", readOnly)
	}
}

// TestArtifactsFailuresAreNeverSilent: whatever fails in the container, the
// plugin says what, where and why in one error line, and exits 1.
func TestArtifactsFailuresAreNeverSilent(t *testing.T) {
	for _, agent := range []string{"off", "on"} {
		t.Run("agent "+agent, func(t *testing.T) {
			forceAgent(t, agent)
			onEachNodeKind(t, testArtifactsFailuresAreNeverSilent)
		})
	}
}

func testArtifactsFailuresAreNeverSilent(t *testing.T, ns string) {
	user := int64(1000)
	pod := artifactsPod(ns, "fail", "busybox", nil)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &user, RunAsGroup: &user}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "ro", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "ro", MountPath: "/ro", ReadOnly: true})
	createPod(t, pod, running)
	kubectl(t, "exec", "-n", ns, "fail", "--", "sh", "-c", "mkdir -p /data/secret/inner && echo x >/data/secret/inner/f && chmod 000 /data/secret")
	src := filepath.Join(t.TempDir(), "src")
	mustWrite(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	// Retries are allowed, as by default: the container's answer is never
	// retried, but an exec whose connection dropped (about one in ten
	// over SPDY to a kubelet under load) is, since it ended without that
	// answer.
	tests := []struct {
		name string
		args []string
		want string // in the error line
	}{
		{"upload into /proc", []string{"upload", src, "/proc"}, "/proc"},
		{"upload into a read-only volume", []string{"upload", src, "/ro"}, "/ro"},
		{"upload into /etc as a non-root user", []string{"upload", src, "/etc"}, "/etc"},
		{"download of a directory the step user cannot read", []string{"download", "/data/secret", t.TempDir()}, "/data/secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := concourse(t, tt.args[0], ns, "fail", tt.args[1:]...)
			if r.exitCode != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", r.exitCode, r.stderr)
			}
			var errLines []string
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.HasPrefix(l, "error: ") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], tt.want) || !strings.Contains(errLines[0], "container main of pod "+ns+"/fail") {
				t.Errorf("want one error line naming %s and the container; stderr:\n%s", tt.want, r.stderr)
			}
			if strings.Contains(r.stderr, "<nil>") {
				t.Errorf("stderr says <nil>:\n%s", r.stderr)
			}
		})
	}
}

func TestArtifactsUploadResumesAfterCut(t *testing.T) {
	// The faults are placed in the scripts' stream (the fallback's); the
	// agent's cuts are its own tests'.
	forceAgent(t, "off")
	ns := testCluster.Namespace(t)
	// The receiving exec's stdout carries the staged files' checksums after
	// the probe's answers: a cut there breaks the first attempt after every
	// byte went in.
	createPod(t, artifactsPod(ns, "upcut", "busybox", map[string]string{
		"testcluster.kubectl-concourse.dev/exec-cut-after-bytes": "200",
		annotationCutCountsFrom:                                  probeEnd,
		"testcluster.kubectl-concourse.dev/exec-cut-times":       "1",
	}), running)
	src := filepath.Join(t.TempDir(), "src")
	for i := 0; i < 8; i++ {
		mustWrite(t, filepath.Join(src, fmt.Sprintf("f%d", i)), bytes.Repeat([]byte{byte('a' + i)}, 100000), 0o644)
	}
	r := concourse(t, "upload", ns, "upcut", src, "/data")
	if r.exitCode != 0 {
		t.Fatalf("upload through a cut: exit %d: %s", r.exitCode, r.stderr)
	}
	if !strings.Contains(r.stderr, "resuming") {
		t.Errorf("no resume reported: %s", r.stderr)
	}
	sums := kubectl(t, "exec", "-n", ns, "upcut", "--", "sh", "-c", "cd /data && sha256sum src/* && ls -A /data")
	for i := 0; i < 8; i++ {
		want := fmt.Sprintf("%x  src/f%d", sha256.Sum256(bytes.Repeat([]byte{byte('a' + i)}, 100000)), i)
		if !strings.Contains(sums, want) {
			t.Errorf("container lacks %q:\n%s", want, sums)
		}
	}
	if left := leftovers(t, ns, "upcut", "/data"); len(left) > 0 {
		t.Errorf("staging left behind: %q", left)
	}
}
