package realnode

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hierarchy is one mounted cgroup hierarchy (v1: one per controller set;
// v2: the unified one).
type hierarchy struct {
	mount   string
	v2      bool
	cpuset  bool // v1 cpuset: a new cgroup needs cpus and mems before tasks
	freezer bool // v1 freezer: freezes a tree so that nothing forks while it is killed
}

// hierarchies lists the cgroup hierarchies mounted at their root.
func hierarchies() []hierarchy {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var hs []hierarchy
	seen := map[string]bool{}
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(lines.Text(), " - ")
		fields, rest := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(rest) < 3 || fields[3] != "/" {
			continue
		}
		h := hierarchy{mount: fields[4]}
		switch rest[0] {
		case "cgroup2":
			h.v2 = true
		case "cgroup":
			for _, opt := range strings.Split(rest[2], ",") {
				h.cpuset = h.cpuset || opt == "cpuset"
				h.freezer = h.freezer || opt == "freezer"
			}
		default:
			continue
		}
		if !seen[rest[2]+rest[0]] {
			seen[rest[2]+rest[0]] = true
			hs = append(hs, h)
		}
	}
	return hs
}

// cgroupDirs lists the directories of the cgroup name that exist.
func cgroupDirs(name string) []string {
	var dirs []string
	for _, h := range hierarchies() {
		if _, err := os.Stat(filepath.Join(h.mount, name)); err == nil {
			dirs = append(dirs, filepath.Join(h.mount, name))
		}
	}
	return dirs
}

// runtimeCgroup is where containerd and the kubelet run (and with them the
// shims containerd starts); the kubelet puts pods beside it, in kubepods.
const runtimeCgroup = "runtime"

// createCgroupTree makes name and name/runtime in every hierarchy.
func createCgroupTree(name string) error {
	for _, h := range hierarchies() {
		for _, dir := range []string{filepath.Join(h.mount, name), filepath.Join(h.mount, name, runtimeCgroup)} {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if h.cpuset {
				for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
					v, err := os.ReadFile(filepath.Join(filepath.Dir(dir), file))
					if err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(dir, file), v, 0o644); err != nil {
						return fmt.Errorf("%s: %w", filepath.Join(dir, file), err)
					}
				}
			}
		}
		if h.v2 {
			// Give the kubelet the controllers to divide among pods; the
			// processes themselves sit in the runtime leaf, as v2 requires.
			ctrls, _ := os.ReadFile(filepath.Join(h.mount, name, "cgroup.controllers"))
			var enable []string
			for _, c := range strings.Fields(string(ctrls)) {
				enable = append(enable, "+"+c)
			}
			if len(enable) > 0 {
				if err := os.WriteFile(filepath.Join(h.mount, name, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0o644); err != nil {
					return fmt.Errorf("enable cgroup controllers %v: %w", enable, err)
				}
			}
		}
	}
	return nil
}

// placeInCgroup moves pid into name/runtime in every hierarchy.
func placeInCgroup(name string, pid int) error {
	for _, h := range hierarchies() {
		procs := filepath.Join(h.mount, name, runtimeCgroup, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move process %d to %s: %w", pid, procs, err)
		}
	}
	return nil
}

// treeProcesses lists the processes anywhere under name.
func treeProcesses(name string) map[int]bool {
	pids := map[int]bool{}
	for _, dir := range cgroupDirs(name) {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids[pid] = true
				}
			}
			return nil
		})
	}
	return pids
}

// killCgroupTree SIGKILLs every process under name and waits until they are
// gone. The tree is frozen first where it can be, so that nothing forks
// between reading the list and killing it.
func killCgroupTree(name string) error {
	var freezer, kill string
	for _, h := range hierarchies() {
		switch {
		case h.freezer:
			freezer = filepath.Join(h.mount, name, "freezer.state")
		case h.v2:
			if _, err := os.Stat(filepath.Join(h.mount, name, "cgroup.kill")); err == nil {
				kill = filepath.Join(h.mount, name, "cgroup.kill")
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := treeProcesses(name)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes of cgroup %s still alive after SIGKILL: %v", name, sortedPIDs(pids))
		}
		// cgroup.kill (v2) kills the whole tree at once; on a hybrid host
		// it may miss processes placed only in the v1 hierarchies, so the
		// listed ones get SIGKILL too, frozen (v1) where possible.
		if kill != "" {
			_ = os.WriteFile(kill, []byte("1"), 0o644)
		}
		frozen := freezer != "" && freeze(freezer)
		for pid := range treeProcesses(name) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if frozen {
			_ = os.WriteFile(freezer, []byte("THAWED"), 0o644)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeze freezes a v1 freezer cgroup and reports whether it got there.
func freeze(state string) bool {
	if err := os.WriteFile(state, []byte("FROZEN"), 0o644); err != nil {
		return false
	}
	for i := 0; i < 100; i++ {
		if s, _ := os.ReadFile(state); strings.TrimSpace(string(s)) == "FROZEN" {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// removeCgroupTree removes name and everything below it, deepest first, in
// every hierarchy. The tree must have no processes left.
func removeCgroupTree(name string) error {
	var errs []error
	for _, root := range cgroupDirs(name) {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			// A cgroup whose last process just exited can be busy for a moment.
			var err error
			for i := 0; i < 50; i++ {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

func sortedPIDs(pids map[int]bool) []int {
	var l []int
	for p := range pids {
		l = append(l, p)
	}
	sort.Ints(l)
	return l
}
