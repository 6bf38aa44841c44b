package tests

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/cluster"
)

// releaseTag is the version the krew test releases; it is not the version of
// the bin/kubectl-concourse TestMain builds, so `version` tells which one ran.
const releaseTag = "v0.0.0-test"

// releasePlatforms are the archives a release holds, as .krew.yaml lists
// them.
var releasePlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// builtPlatforms are those the test cross-compiles: one per OS, both
// architectures among them. Each took 2 to 3 minutes from an empty Go build
// cache on CI's 2 cores, all six 16, a third of CI's cold time then
// (49 minutes). An archive's layout differs by OS only, so
// each other platform's archive is its OS sibling's, under its own name:
// the manifest's every entry is still rendered, validated and installed.
var builtPlatforms = []string{"linux/amd64", "darwin/arm64", "windows/amd64"}

// TestKrew releases one platform per OS with `make release` (builtPlatforms), renders .krew.yaml
// for that release as krew-release-bot would, validates it with krew-index's
// validator, installs it with the real krew into a temporary KREW_ROOT and
// runs the installed plugin through the real kubectl.
func TestKrew(t *testing.T) {
	// Its cross-compiles work while the tests that wait (the keeper's grace,
	// a watch's settle) only wait: run beside them.
	t.Parallel()
	root := cluster.RepoRoot()
	dist := t.TempDir()
	runMake(t, root, "krew", "release", "VERSION="+releaseTag, "DIST="+dist, "PLATFORMS="+strings.Join(builtPlatforms, ","))

	sums := readChecksums(t, dist)
	for _, p := range builtPlatforms {
		name := archiveName(p)
		if _, ok := sums[name]; !ok {
			t.Errorf("checksums.txt lacks %s", name)
		}
	}
	for _, p := range releasePlatforms {
		if slices.Contains(builtPlatforms, p) {
			continue
		}
		goos, _, _ := strings.Cut(p, "/")
		i := slices.IndexFunc(builtPlatforms, func(b string) bool { return strings.HasPrefix(b, goos+"/") })
		data, err := os.ReadFile(filepath.Join(dist, archiveName(builtPlatforms[i])))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dist, archiveName(p)), data)
	}
	hostArchive := filepath.Join(dist, archiveName(runtime.GOOS+"/"+runtime.GOARCH))
	wantEntries := []string{"LICENSE", "README.md", "kubectl-concourse", "kubectl_complete-concourse"}
	if got := tarGzEntries(t, hostArchive); !slices.Equal(got, wantEntries) {
		t.Errorf("%s holds %v, want %v", filepath.Base(hostArchive), got, wantEntries)
	}

	bin := filepath.Join(root, "bin")
	toolsPath := "PATH=" + bin + string(os.PathListSeparator) + pathWithout(bin)
	manifestTemplate := filepath.Join(root, ".krew.yaml")

	// As the bot renders it for GitHub. The validator would download each
	// uri to install it, so here it checks the structure only.
	published := filepath.Join(t.TempDir(), "concourse.yaml")
	writeFile(t, published, renderKrewTemplate(t, manifestTemplate, releaseTag, dist, func(uri string) string { return uri }))
	validator := filepath.Join(bin, "validate-krew-manifest")
	runOK(t, withEnv(toolsPath), validator, "-skip-install", "-manifest", published)

	// The same template with each uri served from dist over loopback: the
	// validator installs every platform through `kubectl krew` and checks
	// that LICENSE is extracted.
	srv := httptest.NewServer(http.FileServer(http.Dir(dist)))
	defer srv.Close()
	served := filepath.Join(t.TempDir(), "concourse.yaml")
	writeFile(t, served, renderKrewTemplate(t, manifestTemplate, releaseTag, dist, func(uri string) string {
		return srv.URL + "/" + path.Base(uri)
	}))
	runOK(t, withEnv(toolsPath), validator, "-manifest", served)

	// A user's install: the published manifest with the downloaded archive
	// (krew checks it against the manifest's sha256).
	krewRoot := t.TempDir()
	kubectl := filepath.Join(bin, "kubectl")
	krewEnv := withEnv(toolsPath, "KREW_ROOT="+krewRoot)
	runOK(t, krewEnv, kubectl, "krew", "install", "--manifest="+published, "--archive="+hostArchive)

	// Only krew's bin dir holds a kubectl-concourse on this PATH.
	userPath := "PATH=" + filepath.Join(krewRoot, "bin") + string(os.PathListSeparator) + pathWithout(bin)
	userEnv := withEnv(userPath)
	out := runOK(t, userEnv, kubectl, "concourse", "version")
	if !strings.HasPrefix(out, "kubectl-concourse "+releaseTag+" ") {
		t.Errorf("kubectl concourse version through krew = %q, want the released %s", out, releaseTag)
	}

	// The caveats' one-time step for completion, then kubectl's plugin completion.
	shim := filepath.Join(krewRoot, "store", "concourse", releaseTag, "kubectl_complete-concourse")
	if err := os.Symlink(shim, filepath.Join(krewRoot, "bin", "kubectl_complete-concourse")); err != nil {
		t.Fatal(err)
	}
	out = runOK(t, userEnv, kubectl, "__complete", "concourse", "")
	if names := completionNames(out); !slices.Contains(names, "version") {
		t.Errorf("kubectl __complete concourse '' through krew's install offers %v, want version among them", names)
	}
}

// runMake runs make in dir, as a user would, not as a sub-make of the make
// that may be running the tests.
func runMake(t *testing.T, dir string, args ...string) {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			env = append(env, kv)
		}
	}
	start := time.Now()
	runOK(t, env, "make", append([]string{"--no-print-directory", "-C", dir}, args...)...)
	t.Logf("make %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Second))
}

// runOK runs name with args and env (nil: this process's), with no stdin,
// for at most 30 minutes; it returns stdout and fails the test unless the
// command exits 0.
func runOK(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	r := runCmd(t, cmd, "")
	if r.exitCode != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), r.exitCode, r.stdout, r.stderr)
	}
	return r.stdout
}

// withEnv is this process's environment with variables set or replaced.
func withEnv(kv ...string) []string {
	return append(os.Environ(), kv...)
}

// pathWithout is $PATH without dir, so that the repository's bin/ cannot
// stand in for what krew installed.
func pathWithout(dir string) string {
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.Clean(d) != filepath.Clean(dir) {
			keep = append(keep, d)
		}
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

func archiveName(platform string) string {
	goos, goarch, _ := strings.Cut(platform, "/")
	ext := ".tar.gz"
	if goos == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("kubectl-concourse_%s_%s_%s%s", releaseTag, goos, goarch, ext)
}

// readChecksums reads dist/checksums.txt and checks each line against the
// file it names, as `sha256sum -c` does.
func readChecksums(t *testing.T, dist string) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt: malformed line %q", sc.Text())
		}
		if got := fileSHA256(t, filepath.Join(dist, name)); got != sum {
			t.Errorf("checksums.txt: %s has sha256 %s, the file %s", name, sum, got)
		}
		sums[name] = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

func fileSHA256(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tarGzEntries lists the names in a .tar.gz, sorted.
func tarGzEntries(t *testing.T, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			slices.Sort(names)
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

// renderKrewTemplate renders the krew-release-bot template as the bot does:
// text/template over {TagName}, where {{addURIAndSha "URL" .TagName}} renders
// URL (itself a template) and becomes "uri: URL\n    sha256: SUM". The bot
// downloads URL for its sum; here the archive of the same name in dist is
// read, and uri(URL) is written as the uri.
func renderKrewTemplate(t *testing.T, name, tag, dist string, uri func(string) string) []byte {
	t.Helper()
	values := struct{ TagName string }{tag}
	tmpl, err := template.New(filepath.Base(name)).Funcs(template.FuncMap{
		"addURIAndSha": func(url, tag string) (string, error) {
			u, err := template.New("url").Parse(url)
			if err != nil {
				return "", err
			}
			var b strings.Builder
			if err := u.Execute(&b, struct{ TagName string }{tag}); err != nil {
				return "", err
			}
			archive := filepath.Join(dist, path.Base(b.String()))
			if _, err := os.Stat(archive); err != nil {
				return "", fmt.Errorf("no release archive for %s: %w", b.String(), err)
			}
			return fmt.Sprintf("uri: %s\n    sha256: %s", uri(b.String()), fileSHA256(t, archive)), nil
		},
	}).ParseFiles(name)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, values); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return []byte(out.String())
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// completionNames are the candidates of cobra's completion protocol: the
// first field of each line, without the final ":<directive>" line.
func completionNames(out string) []string {
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		name, _, _ := strings.Cut(line, "\t")
		names = append(names, name)
	}
	return names
}
