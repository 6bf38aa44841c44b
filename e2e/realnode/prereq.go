package realnode

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cniBinDirs are where CNI plugins are installed: Debian's
// containernetworking-plugins, then the upstream default.
var cniBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// cniPlugins are the CNI plugins a node uses (loopback is containerd's own
// call for every pod).
var cniPlugins = []string{"bridge", "host-local", "loopback"}

func cniBinDir() (string, error) {
	for _, dir := range cniBinDirs {
		missing := false
		for _, p := range cniPlugins {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				missing = true
			}
		}
		if !missing {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no CNI plugins (%s) in %s: install containernetworking-plugins", strings.Join(cniPlugins, ", "), strings.Join(cniBinDirs, " or "))
}

// Prerequisites says why this machine cannot run a real node, or nil if it
// can: root, the binaries `make cluster` builds into binDir, runc, the CNI
// plugins, ip(8) and cgroups.
func Prerequisites(binDir string) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (containers, mounts and network setup need it)")
	}
	for _, b := range []string{"kubelet", "containerd", "containerd-shim-runc-v2"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = append(missing, filepath.Join(binDir, b)+" (make cluster builds it)")
		}
	}
	for _, tool := range []struct{ name, pkg string }{{"runc", "runc"}, {"ip", "iproute2"}, {"mount", "mount"}} {
		if _, err := lookPath(tool.name); err != nil {
			missing = append(missing, tool.name+" (Debian package "+tool.pkg+")")
		}
	}
	if _, err := cniBinDir(); err != nil {
		missing = append(missing, err.Error())
	}
	if len(hierarchies()) == 0 {
		missing = append(missing, "a mounted cgroup file system")
	}
	if len(missing) > 0 {
		return errors.New("this machine cannot run a real node; it lacks " + strings.Join(missing, "; "))
	}
	return nil
}

// lookPath finds a tool in PATH or in the sbin directories root has.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
			return filepath.Join(dir, name), nil
		}
	}
	return "", exec.ErrNotFound
}
