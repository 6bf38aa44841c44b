// Package images is the test cluster's image store: one directory per image,
// each holding a root filesystem and the image's default command and
// environment. The node agent copies an image's rootfs for every container it
// runs; nothing is ever pulled.
//
// Layout of a store directory:
//
//	<dir>/<name>/rootfs/       the files of the image, copied into each container
//	<dir>/<name>/config.json   {"Entrypoint":[...],"Cmd":[...],"Env":["K=V"],"WorkingDir":"/","User":""}
//	<dir>/<name>/.stamp        written by Ensure for the images it builds (absent for hand-made ones)
package images

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Config is the part of an OCI image configuration the node agent honours.
type Config struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	Env        []string `json:"Env,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
	// User is "uid" or "uid:gid", used when the pod sets no runAsUser.
	User string `json:"User,omitempty"`
}

// Image is one image found in the store.
type Image struct {
	Name   string // store name, e.g. "busybox"
	Rootfs string // absolute path of the rootfs directory
	Config Config
	// ID identifies the image's content, reported as a container's imageID.
	ID string
}

// ErrNotFound is returned by Lookup when the store has no such image, the
// local equivalent of a failed pull.
var ErrNotFound = errors.New("image not found in the local store")

// Name maps an image reference to its store name: the registry, repository
// path, tag and digest are dropped, so "docker.io/library/busybox:1.36",
// "busybox@sha256:..." and "localhost:5000/x/busybox" all name "busybox".
func Name(ref string) string {
	ref = strings.TrimSpace(ref)
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	if i := strings.Index(ref, ":"); i >= 0 {
		ref = ref[:i]
	}
	return strings.ToLower(ref)
}

// Lookup finds the image a reference names in the store under dir.
func Lookup(dir, ref string) (*Image, error) {
	name := Name(ref)
	// A name that could escape the store is treated like any unknown image.
	if name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("%q: %w", ref, ErrNotFound)
	}
	imageDir := filepath.Join(dir, name)
	raw, err := os.ReadFile(filepath.Join(imageDir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", name, err)
	}
	var cfg Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parse config of image %s: %w", name, err)
	}
	rootfs := filepath.Join(imageDir, "rootfs")
	if fi, err := os.Stat(rootfs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("image %s has no rootfs directory: %w", name, ErrNotFound)
	}
	stamp, _ := os.ReadFile(filepath.Join(imageDir, ".stamp"))
	sum := sha256.Sum256(append(raw, stamp...))
	return &Image{Name: name, Rootfs: rootfs, Config: cfg, ID: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// Sources of the built-in images, Debian packages busybox-static and
// bash-static.
const (
	BusyboxBinary = "/bin/busybox"
	BashBinary    = "/bin/bash-static"
)

// builder describes one built-in image.
type builder struct {
	name    string
	inputs  []string // files whose content decides whether the image is stale
	build   func(rootfs string) error
	config  Config
	version string // bumped when the layout a builder produces changes
}

// Ensure builds the built-in images (busybox, bash, distroless, pause) in the store
// under dir, unless an up-to-date copy is already there. pauseBinary is the
// static pause program that the distroless image runs as its entrypoint.
// Other directories of the store are left alone.
func Ensure(dir, pauseBinary string) error {
	shellEnv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	builders := []builder{
		{
			name: "busybox", version: "2", inputs: []string{BusyboxBinary},
			build:  buildBusybox,
			config: Config{Cmd: []string{"sh"}, Env: shellEnv, WorkingDir: "/"},
		},
		{
			name: "bash", version: "2", inputs: []string{BusyboxBinary, BashBinary},
			build: func(rootfs string) error {
				if err := buildBusybox(rootfs); err != nil {
					return err
				}
				return copyFile(BashBinary, filepath.Join(rootfs, "bin", "bash"), 0o755)
			},
			config: Config{Cmd: []string{"bash"}, Env: shellEnv, WorkingDir: "/"},
		},
		{
			name: "distroless", version: "2", inputs: []string{pauseBinary},
			build: func(rootfs string) error {
				if err := copyFile(pauseBinary, filepath.Join(rootfs, "pause"), 0o755); err != nil {
					return err
				}
				return writeEtc(rootfs)
			},
			config: Config{Entrypoint: []string{"/pause"}, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}, WorkingDir: "/"},
		},
		{
			// The sandbox image of real nodes (containerd's pause container).
			name: "pause", version: "1", inputs: []string{pauseBinary},
			build: func(rootfs string) error {
				return copyFile(pauseBinary, filepath.Join(rootfs, "pause"), 0o755)
			},
			config: Config{Entrypoint: []string{"/pause"}, WorkingDir: "/"},
		},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create image store: %w", err)
	}
	for _, b := range builders {
		if err := b.ensure(dir); err != nil {
			return fmt.Errorf("image %s: %w", b.name, err)
		}
	}
	return nil
}

func (b builder) ensure(dir string) error {
	stamp, err := b.stamp()
	if err != nil {
		return err
	}
	imageDir := filepath.Join(dir, b.name)
	if old, err := os.ReadFile(filepath.Join(imageDir, ".stamp")); err == nil && string(old) == stamp {
		return nil
	}
	// Build next to the final place and swap, so that a half-built image is
	// never visible and concurrent Ensure calls cannot see a mix.
	tmp, err := os.MkdirTemp(dir, "."+b.name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	for _, d := range []string{"", "tmp", "dev", "proc", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	if err := b.build(rootfs); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(b.config, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), cfg, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".stamp"), []byte(stamp), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(imageDir); err != nil {
		return fmt.Errorf("remove stale image: %w", err)
	}
	return os.Rename(tmp, imageDir)
}

// stamp fingerprints a builder's inputs: the content of its source binaries
// and its layout version.
func (b builder) stamp() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n", b.name, b.version)
	for _, in := range b.inputs {
		f, err := os.Open(in)
		if err != nil {
			return "", fmt.Errorf("image source: %w", err)
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("read image source %s: %w", in, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// buildBusybox installs busybox with one symlink per applet at the paths
// busybox itself reports (`busybox --list-full`, e.g. bin/sh, usr/bin/env).
func buildBusybox(rootfs string) error {
	if err := copyFile(BusyboxBinary, filepath.Join(rootfs, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	applets, err := busyboxApplets()
	if err != nil {
		return err
	}
	for _, applet := range applets {
		link := filepath.Join(rootfs, applet)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", link); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return writeEtc(rootfs)
}

// writeEtc writes the account files that tools like id, whoami and ls -l
// read, with the users of common images (root, nobody, nonroot 65532).
func writeEtc(rootfs string) error {
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/false\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(rootfs, "root"), 0o700)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func busyboxApplets() ([]string, error) {
	out, err := exec.Command(BusyboxBinary, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	var applets []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		// linuxrc is busybox's init for initramfs, meaningless in an image.
		if line == "" || line == "linuxrc" || strings.Contains(line, "..") {
			continue
		}
		applets = append(applets, line)
	}
	return applets, nil
}
