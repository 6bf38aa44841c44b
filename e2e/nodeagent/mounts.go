package nodeagent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// mountTable records the bind mounts made for one pod so that they are
// undone, in reverse order, when the pod goes away.
type mountTable struct {
	mu      sync.Mutex
	targets []string
}

// bind mounts source (a directory or a file) at target, read-only if asked;
// target is created as an empty directory or file to match source.
func (m *mountTable) bind(source, target string, readOnly bool) error {
	fi, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("mount source: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
	} else if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", source, target, err)
	}
	m.mu.Lock()
	m.targets = append(m.targets, target)
	m.mu.Unlock()
	// Mounts must not propagate back to the source's peers on the host.
	if err := unix.Mount("", target, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s private: %w", target, err)
	}
	if readOnly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// mountProc mounts a proc filesystem at target, for the tools that read
// /proc (ps, /dev/stdin, ...).
func (m *mountTable) mountProc(target string) error {
	if err := unix.Mount("proc", target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", target, err)
	}
	m.mu.Lock()
	m.targets = append(m.targets, target)
	m.mu.Unlock()
	return nil
}

// unmountAll undoes every mount, newest first. A busy mount is detached
// lazily: the processes that held it are being killed anyway.
func (m *mountTable) unmountAll() error {
	m.mu.Lock()
	targets := m.targets
	m.targets = nil
	m.mu.Unlock()
	var errs []error
	for i := len(targets) - 1; i >= 0; i-- {
		if err := unmount(targets[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func unmount(target string) error {
	err := unix.Unmount(target, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// unmountUnder detaches every mount point at or below dir, deepest first,
// as listed in /proc/self/mountinfo.
func unmountUnder(dir string) error {
	points, err := mountPointsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeUnmounted removes dir, but only if nothing is mounted below it:
// removing through a bind mount would delete a volume's data (a PV, a host
// path) instead of the pod's view of it.
func removeUnmounted(dir string) error {
	points, err := mountPointsUnder(dir)
	if err != nil {
		return err
	}
	if len(points) > 0 {
		return fmt.Errorf("not removing %s: %d mounts remain below it, e.g. %s", dir, len(points), points[0])
	}
	return os.RemoveAll(dir)
}

func mountPointsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Deepest first, so that no mount hides another being unmounted.
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points, nil
}

// unescapeMountPath decodes the octal escapes (\040 for space, ...) of
// /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
