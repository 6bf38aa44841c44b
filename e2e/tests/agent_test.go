package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// forceAgent makes the plugins this test runs carry transfers through the
// in-container agent (on) or the container's scripts (off).
func forceAgent(t *testing.T, mode string) {
	t.Setenv("KUBECTL_CONCOURSE_AGENT", mode)
}

func TestAgentUploadsAreRealDirectories(t *testing.T) {
	onEachNodeKind(t, testAgentUploadsAreRealDirectories)
}

// Concourse tasks reach sibling inputs through ../: after two uploads side
// by side, a script of one runs from the other, find and tar see files,
// nothing of the plugin's is beside them, symlinks stay symlinks, and a
// second upload replaces a tree exactly.
func testAgentUploadsAreRealDirectories(t *testing.T, ns string) {
	forceAgent(t, "on")
	createPod(t, artifactsPod(ns, "sib", "busybox", nil), running)
	src := t.TempDir()
	mustWrite(t, filepath.Join(src, "repo", "main.go"), []byte("package main\n"), 0o644)
	mustWrite(t, filepath.Join(src, "repo", "old.txt"), []byte("old\n"), 0o644)
	mustSymlink(t, "/etc/hostname", filepath.Join(src, "repo", "abs"))
	mustSymlink(t, "../../elsewhere", filepath.Join(src, "repo", "up"))
	mustWrite(t, filepath.Join(src, "ci", "build.sh"), []byte("ls main.go && echo built\n"), 0o755)
	for _, dir := range []string{"repo", "ci"} {
		r := concourse(t, "upload", ns, "sib", "-v", filepath.Join(src, dir), "/w")
		if r.exitCode != 0 || !strings.Contains(r.stderr, "through the in-container agent") {
			t.Fatalf("upload %s: exit %d: %s", dir, r.exitCode, r.stderr)
		}
	}
	out := kubectl(t, "exec", "-n", ns, "sib", "--", "sh", "-c",
		`cd /w/repo && sh ../ci/build.sh && find /w/repo -type f | sort && tar cf - -C /w repo | tar tf - | sort && `+
			`[ ! -L /w/repo ] && echo real && ls -A /w && readlink /w/repo/abs && readlink /w/repo/up`)
	for _, want := range []string{"built", "/w/repo/main.go", "repo/old.txt", "real", "ci\nrepo\n", "/etc/hostname\n../../elsewhere"} {
		if !strings.Contains(out, want) {
			t.Errorf("in the container, want %q in:\n%s", want, out)
		}
	}
	mustRemove(t, filepath.Join(src, "repo", "old.txt"))
	mustWrite(t, filepath.Join(src, "repo", "new.txt"), []byte("new\n"), 0o644)
	if r := concourse(t, "upload", ns, "sib", filepath.Join(src, "repo"), "/w"); r.exitCode != 0 {
		t.Fatalf("second upload: exit %d: %s", r.exitCode, r.stderr)
	}
	out = kubectl(t, "exec", "-n", ns, "sib", "--", "sh", "-c", "cd /w && find repo | sort && ls -A /w")
	if want := "repo\nrepo/abs\nrepo/main.go\nrepo/new.txt\nrepo/up\nci\nrepo\n"; out != want {
		t.Errorf("after the second upload:\n%s\nwant exactly:\n%s", out, want)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// A stream cut on its way into the agent, loudly or silently (the exec
// ends as a success), is retried: the upload lands whole, and nothing of
// the cut attempt stays beside it. The node agent injects the cuts.
func TestAgentUploadThroughACut(t *testing.T) {
	forceAgent(t, "on")
	for _, silently := range []bool{false, true} {
		t.Run(map[bool]string{false: "loud", true: "silent"}[silently], func(t *testing.T) {
			ns := testCluster.Namespace(t)
			pod := fmt.Sprintf("agentcut%v", silently)
			createPod(t, artifactsPod(ns, pod, "busybox", map[string]string{
				// 250 kB into the tar, counted from the first file's header.
				annotationCutStdinAfter: "250000",
				annotationCutCountsFrom: "cutmarker0",
				annotationCutTimes:      "1",
				annotationCutSilently:   fmt.Sprint(silently),
			}), running)
			src := filepath.Join(t.TempDir(), "src")
			for i := range 8 {
				mustWrite(t, filepath.Join(src, fmt.Sprintf("cutmarker%d", i)), bytes.Repeat([]byte{byte('a' + i)}, 100000), 0o644)
			}
			r := concourse(t, "upload", ns, pod, "--compress", "none", src, "/data")
			if r.exitCode != 0 || !strings.Contains(r.stderr, "resuming") {
				t.Fatalf("upload through a cut: exit %d, want 0 after a resume: %s", r.exitCode, r.stderr)
			}
			sums := kubectl(t, "exec", "-n", ns, pod, "--", "sh", "-c", "cd /data && sha256sum src/* && ls -A /data")
			for i := range 8 {
				if want := fmt.Sprintf("%x  src/cutmarker%d", sha256.Sum256(bytes.Repeat([]byte{byte('a' + i)}, 100000)), i); !strings.Contains(sums, want) {
					t.Errorf("container lacks %q:\n%s", want, sums)
				}
			}
			if !strings.HasSuffix(sums, "\nsrc\n") {
				t.Errorf("beside the upload:\n%s\nwant src alone", sums)
			}
		})
	}
}

// An upload through the agent that is interrupted (Ctrl-C) or whose plugin
// is killed leaves nothing in the container within a few seconds: the
// agent sees its stdin end and removes its staging and itself.
func TestAgentInterruptsLeaveNothing(t *testing.T) {
	forceAgent(t, "on")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			ns := testCluster.Namespace(t)
			// 2 MB/s: the agent's binary arrives in under 2 s, the tree
			// takes 5 s more.
			createPod(t, artifactsPod(ns, "intr", "busybox", map[string]string{annotationThrottle: "2000000"}), running)
			src := filepath.Join(t.TempDir(), "up")
			mustWrite(t, filepath.Join(src, "big"), bytes.Repeat([]byte("k"), 10_000_000), 0o644)
			cmd := testCluster.Command(context.Background(), "kubectl", "concourse", "upload", "-n", ns, "--pod", "intr", "-q", "--compress", "none", src, "/data")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Interrupted once the staging exists beside the destination.
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(kubectl(t, "exec", "-n", ns, "intr", "--", "ls", "-A", "/data"), ".kubectl-concourse-") {
				if time.Now().After(deadline) {
					t.Fatal("the upload never staged")
				}
				time.Sleep(100 * time.Millisecond)
			}
			_ = cmd.Process.Signal(sig)
			_ = cmd.Wait()
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				left := kubectl(t, "exec", "-n", ns, "intr", "--", "sh", "-c", "ls -A /data /tmp")
				if !strings.Contains(left, "kubectl-concourse") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("20 s after %s, left in the container:\n%s", sig, left)
				}
			}
		})
	}
}

func TestRealModuleRoundTrips(t *testing.T) {
	onEachNodeKind(t, testRealModuleRoundTrips)
}

// A real tree, a module from the Go module cache (its name holds an @, its
// files are read-only), goes up and comes back byte for byte, modes kept,
// through the agent and through the scripts.
func testRealModuleRoundTrips(t *testing.T, ns string) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	createPod(t, artifactsPod(ns, "mod", "busybox", nil), running)
	// client-go's tree is deep; pod-security-admission's 4,690 files have
	// long names with "-" and "@" (the scripts' checksum batches once cut
	// one of them in two).
	for _, name := range []string{"client-go@v0.37.2", "pod-security-admission@v0.37.2"} {
		module := filepath.Join(strings.TrimSpace(string(out)), "k8s.io", name)
		if _, err := os.Stat(module); err != nil {
			t.Fatalf("the e2e module's own dependency is not in the module cache: %v", err)
		}
		want := localTree(t, module)
		for _, agent := range []string{"on", "off"} {
			t.Run(name+" agent "+agent, func(t *testing.T) {
				forceAgent(t, agent)
				dir := "/data/" + agent
				up := concourse(t, "upload", ns, "mod", "-v", module, dir)
				if up.exitCode != 0 {
					t.Fatalf("upload: exit %d: %s", up.exitCode, up.stderr)
				}
				back := t.TempDir()
				r := concourse(t, "download", ns, "mod", "-v", dir+"/"+name, back)
				if r.exitCode != 0 {
					t.Fatalf("download: exit %d: %s", r.exitCode, r.stderr)
				}
				if way := map[string]string{"on": "through the in-container agent", "off": "through the container's shell scripts"}[agent]; !strings.Contains(r.stderr, way) {
					t.Errorf("download -v did not say %q: %s", way, r.stderr)
				}
				if agent == "on" {
					// auto compresses an upload from 8 MiB (client-go's
					// is), a download whatever its size.
					if name == "client-go@v0.37.2" {
						codecByCrossing(t, "upload", up.stderr)
					}
					codecByCrossing(t, "download", r.stderr)
				}
				got := localTree(t, filepath.Join(back, name))
				if len(got) != len(want) {
					t.Errorf("%d entries came back, want %d", len(got), len(want))
				}
				for rel, w := range want {
					if got[rel] != w {
						t.Errorf("%s: got %q, want %q", rel, got[rel], w)
						break
					}
				}
			})
		}
	}
}

// crossedAt is -v's word on the codec and how fast the agent's binary
// crossed the link.
var crossedAt = regexp.MustCompile(`, (s2|zstd)-compressed \(its binary crossed at (\d+) MB/s\)`)

// codecByCrossing checks that a transfer through the agent was compressed
// as the binary's crossing says: S2 from 15 MB/s, zstd below (loopback
// measures 54–93 MB/s, a loaded machine less).
func codecByCrossing(t *testing.T, way, stderr string) {
	t.Helper()
	m := crossedAt.FindStringSubmatch(stderr)
	if m == nil {
		t.Errorf("%s -v named no codec and crossing rate: %s", way, stderr)
		return
	}
	rate, _ := strconv.Atoi(m[2]) // rounded: at 15 either is right
	if want := map[bool]string{true: "s2", false: "zstd"}[rate > 15]; rate != 15 && m[1] != want {
		t.Errorf("%s: %s-compressed after the binary crossed at %d MB/s, want %s", way, m[1], rate, want)
	}
}

func TestAgentDownloadsKeepSymlinks(t *testing.T) {
	onEachNodeKind(t, testAgentDownloadsKeepSymlinks)
}

// A download through the agent brings symlinks back as symlinks, absolute
// or leading out of the tree, and replaces the local tree exactly.
func testAgentDownloadsKeepSymlinks(t *testing.T, ns string) {
	forceAgent(t, "on")
	createPod(t, artifactsPod(ns, "links", "busybox", nil), running)
	kubectl(t, "exec", "-n", ns, "links", "--", "sh", "-c",
		"mkdir -p /data/out/d && echo hi >/data/out/d/f && ln -s /etc/passwd /data/out/abs && ln -s ../../x /data/out/d/up")
	dest := t.TempDir()
	treeOf(t, filepath.Join(dest, "out"), map[string]string{"old": "old"})
	r := concourse(t, "download", ns, "links", "-v", "/data/out", dest)
	if r.exitCode != 0 || !strings.Contains(r.stderr, "download: through the in-container agent") {
		t.Fatalf("download: exit %d: %s", r.exitCode, r.stderr)
	}
	want := map[string]string{".": "dir", "d": "dir", "d/f": "hi\n", "abs": "-> /etc/passwd", "d/up": "-> ../../x"}
	got := map[string]string{}
	filepath.WalkDir(filepath.Join(dest, "out"), func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(filepath.Join(dest, "out"), p)
		switch {
		case err != nil:
			got[rel] = err.Error()
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			got[rel] = "-> " + target
		case d.IsDir():
			got[rel] = "dir"
		default:
			b, _ := os.ReadFile(p)
			got[rel] = string(b)
		}
		return nil
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("downloaded %v, want exactly %v", got, want)
	}
	if entries, _ := os.ReadDir(dest); len(entries) != 1 {
		t.Errorf("left beside the download: %v", entries)
	}
	if left := kubectl(t, "exec", "-n", ns, "links", "--", "sh", "-c", "ls -A /tmp /data"); strings.Contains(left, "kubectl-concourse") {
		t.Errorf("left in the container:\n%s", left)
	}
}

// A stream cut on its way out of the agent, loudly or silently (the exec
// ends as a success), is sent again: the download lands whole. With no
// retry left it fails, and the old tree stays. The node agent injects the
// cuts, 250 kB into the tar.
func TestAgentDownloadThroughACut(t *testing.T) {
	forceAgent(t, "on")
	for _, silently := range []bool{false, true} {
		t.Run(map[bool]string{false: "loud", true: "silent"}[silently], func(t *testing.T) {
			ns := testCluster.Namespace(t)
			pod := fmt.Sprintf("agentdowncut%v", silently)
			createPod(t, artifactsPod(ns, pod, "busybox", map[string]string{
				annotationCutAfter:      "250000",
				annotationCutCountsFrom: "cutmarker0",
				annotationCutTimes:      "1",
				annotationCutSilently:   fmt.Sprint(silently),
			}), running)
			kubectl(t, "exec", "-n", ns, pod, "--", "sh", "-c",
				`mkdir -p /data/src && i=0; while [ $i -lt 8 ]; do head -c 100000 /dev/urandom >/data/src/cutmarker$i; i=$((i+1)); done`)
			dest := t.TempDir()
			treeOf(t, filepath.Join(dest, "src"), map[string]string{"old": "old"})
			before := localTree(t, dest)

			r := concourse(t, "download", ns, pod, "--compress", "none", "--retries", "0", "/data/src", dest)
			if r.exitCode != 1 {
				t.Fatalf("download through a cut with no retry: exit %d, want 1: %s", r.exitCode, r.stderr)
			}
			if got := localTree(t, dest); !reflect.DeepEqual(got, before) {
				t.Errorf("the cut download changed the destination: %v", got)
			}

			kubectl(t, "annotate", "-n", ns, "pod", pod, "--overwrite", annotationCutTimes+"=2")
			r = concourse(t, "download", ns, pod, "--compress", "none", "/data/src", dest)
			if r.exitCode != 0 || !strings.Contains(r.stderr, "(retry 1)") {
				t.Fatalf("download through a cut: exit %d, want 0 after a retry: %s", r.exitCode, r.stderr)
			}
			sums := kubectl(t, "exec", "-n", ns, pod, "--", "sh", "-c", "cd /data && sha256sum src/*")
			for i := range 8 {
				b, err := os.ReadFile(filepath.Join(dest, "src", fmt.Sprintf("cutmarker%d", i)))
				if want := fmt.Sprintf("%x  src/cutmarker%d", sha256.Sum256(b), i); err != nil || !strings.Contains(sums, want) {
					t.Errorf("cutmarker%d differs from the container's (%v):\n%s", i, err, sums)
				}
			}
			if entries, _ := os.ReadDir(dest); len(entries) != 1 {
				t.Errorf("left beside the download: %v", entries)
			}
		})
	}
}

// An upload through the agent whose stream is silently cut, with no retry
// left, fails: the destination keeps its old tree, and within seconds
// nothing of the attempt is beside it.
func TestAgentSilentCutUploadNeverLands(t *testing.T) {
	forceAgent(t, "on")
	ns := testCluster.Namespace(t)
	createPod(t, artifactsPod(ns, "agentsilentup", "busybox", map[string]string{
		annotationCutStdinAfter: "150000",
		annotationCutCountsFrom: "cutmarker0",
		annotationCutTimes:      "1",
		annotationCutSilently:   "true",
	}), running)
	src := filepath.Join(t.TempDir(), "up")
	for i := range 4 {
		mustWrite(t, filepath.Join(src, fmt.Sprintf("cutmarker%d", i)), bytes.Repeat([]byte{byte('a' + i)}, 100000), 0o644)
	}
	kubectl(t, "exec", "-n", ns, "agentsilentup", "--", "sh", "-c", "mkdir -p /data/up && echo old >/data/up/old")
	before := remoteFiles(t, ns, "agentsilentup", "/data/up")
	r := concourse(t, "upload", ns, "agentsilentup", "--compress", "none", "--retries", "0", src, "/data")
	if r.exitCode != 1 {
		t.Fatalf("upload of a silently cut stream: exit %d, want 1:\n%s", r.exitCode, r.stderr)
	}
	if got := remoteFiles(t, ns, "agentsilentup", "/data/up"); !reflect.DeepEqual(got, before) {
		t.Errorf("the cut upload changed the destination: %v", got)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		left := kubectl(t, "exec", "-n", ns, "agentsilentup", "--", "sh", "-c", "ls -A /data /tmp")
		if !strings.Contains(left, "kubectl-concourse") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after the cut upload, left in the container:\n%s", left)
		}
	}
}
