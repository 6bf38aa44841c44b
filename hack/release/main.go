// Command release cross-compiles kubectl-concourse and packs one archive per
// platform plus a sha256 checksums file, in the layout .krew.yaml expects:
//
//	dist/kubectl-concourse_<version>_<os>_<arch>.tar.gz   (.zip for windows)
//	dist/checksums.txt                                      (sha256sum format)
//
// `make release VERSION=vX.Y.Z` runs it with the Makefile's -ldflags, so the
// version stamping is defined in one place. Archives are reproducible: entries
// in a fixed order, owned by root, dated with the build date.
package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

const (
	binaryName     = "kubectl-concourse"
	completionShim = "kubectl_complete-concourse"
	mainPackage    = "./cmd/kubectl-concourse"
	checksumsFile  = "checksums.txt"
)

// defaultPlatforms are the six GOOS/GOARCH pairs .krew.yaml lists.
var defaultPlatforms = "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64"

// semver is krew's rule for spec.version: semantic version with a leading v.
var semver = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	version := fs.String("version", "", "release version, semver with a leading v (krew requires it)")
	ldflags := fs.String("ldflags", "", "linker flags, including the -X version stamps")
	dist := fs.String("dist", "dist", "output directory")
	date := fs.String("date", "", "build date (RFC 3339), also the archive entries' mtime; default now")
	platforms := fs.String("platforms", defaultPlatforms, "comma-separated GOOS/GOARCH list")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !semver.MatchString(*version) {
		return fmt.Errorf("-version %q is not a semantic version with a leading v (make release VERSION=v1.2.3)", *version)
	}
	mtime := time.Now().UTC().Truncate(time.Second)
	if *date != "" {
		t, err := time.Parse(time.RFC3339, *date)
		if err != nil {
			return fmt.Errorf("-date: %w", err)
		}
		mtime = t
	}
	targets, err := parsePlatforms(*platforms)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dist, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kubectl-concourse-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	var archives []string
	for _, p := range targets {
		bin := filepath.Join(work, p.os+"_"+p.arch, binaryFile(p))
		if err := build(p, *ldflags, bin); err != nil {
			return err
		}
		name := archiveName(*version, p)
		entries := []entry{
			{name: binaryFile(p), src: bin, mode: 0o755},
			{name: "LICENSE", src: "LICENSE", mode: 0o644},
			{name: "README.md", src: "README.md", mode: 0o644},
			{name: completionShim, src: completionShim, mode: 0o755},
		}
		if err := writeArchive(filepath.Join(*dist, name), entries, mtime); err != nil {
			return fmt.Errorf("pack %s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "release: wrote %s\n", filepath.Join(*dist, name))
		archives = append(archives, filepath.Join(*dist, name))
	}
	return writeChecksums(filepath.Join(*dist, checksumsFile), archives)
}

func parsePlatforms(s string) ([]platform, error) {
	var out []platform
	for _, f := range strings.Split(s, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || goos == "" || goarch == "" {
			return nil, fmt.Errorf("-platforms: %q is not GOOS/GOARCH", f)
		}
		out = append(out, platform{goos, goarch})
	}
	return out, nil
}

func binaryFile(p platform) string {
	if p.os == "windows" {
		return binaryName + ".exe"
	}
	return binaryName
}

func archiveName(version string, p platform) string {
	ext := ".tar.gz"
	if p.os == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("%s_%s_%s_%s%s", binaryName, version, p.os, p.arch, ext)
}

// build cross-compiles a static binary; cgo is off so every target builds here.
func build(p platform, ldflags, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, mainPackage)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w", p, err)
	}
	return nil
}

// entry is one file of an archive, stored flat at the archive's root (the
// layout .krew.yaml's files: section names).
type entry struct {
	name string
	src  string
	mode int64
}

// writeArchive writes a .zip or a .tar.gz (chosen by the name) next to its
// final path and renames it into place, so a failed run leaves no half archive.
func writeArchive(path string, entries []entry, mtime time.Time) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".partial-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if strings.HasSuffix(path, ".zip") {
		err = writeZip(tmp, entries, mtime)
	} else {
		err = writeTarGz(tmp, entries, mtime)
	}
	if err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeTarGz(w io.Writer, entries []entry, mtime time.Time) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		data, err := os.ReadFile(e.src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return errors.Join(tw.Close(), gz.Close())
}

func writeZip(w io.Writer, entries []entry, mtime time.Time) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		data, err := os.ReadFile(e.src)
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: mtime}
		hdr.SetMode(os.FileMode(e.mode))
		f, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// writeChecksums writes "<sha256>  <file name>" lines, sorted, as sha256sum
// does, so `sha256sum -c checksums.txt` verifies a download.
func writeChecksums(path string, archives []string) error {
	var lines []string
	for _, a := range archives {
		sum, err := fileSHA256(a)
		if err != nil {
			return err
		}
		lines = append(lines, sum+"  "+filepath.Base(a))
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
