//go:build linux

package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// oldStoreDir is where the script-based uploads kept their versions beside
// the destination, which they landed as a symlink into it:
// NAME -> .kubectl-concourse/NAME/v.ID/NAME.
const oldStoreDir = ".kubectl-concourse"

// commit lands the staging at req.Dest under the parent's lock: by
// exchanging the two when the destination exists, by a rename that replaces
// nothing when it does not. It replies, and only then removes what it
// replaced (now inside the staging) and an old script store: the reply is
// not kept waiting for the removal of a large tree.
func (a *agent) commit(req protocol.Request) error {
	s := a.stage
	dest := string(req.Dest)
	switch {
	case s == nil:
		return a.send(protocol.Reply{Error: "commit: nothing received"})
	case s.inPlace:
		return a.send(protocol.Reply{Error: "commit: the tree was received in place: nothing to land"})
	case req.Staging != "" && string(req.Staging) != s.name:
		return a.send(protocol.Reply{Error: fmt.Sprintf("commit: staging %q is not this agent's", req.Staging)})
	case filepath.Dir(dest) != s.parentPath:
		return a.send(protocol.Reply{Error: fmt.Sprintf("commit: %s is not beside the staging", dest)})
	}
	how, oldStore, err := land(s, filepath.Base(dest))
	if err != nil {
		return a.send(protocol.Reply{Error: err.Error()})
	}
	a.stage = nil
	reply := a.send(protocol.Reply{Landed: true, How: how, Staging: protocol.Name(s.name)})
	// What was replaced is inside the staging, which this agent still
	// holds: if it is killed now, the next commit sweeps it.
	if err := s.remove(); err != nil {
		a.logf("remove the replaced tree: %v", err)
	}
	if oldStore != "" {
		os.RemoveAll(filepath.Join(s.parentPath, oldStore))
		os.Remove(filepath.Join(s.parentPath, oldStoreDir)) // only if empty
	}
	return reply
}

// land moves the staging's tree to name in the parent. It returns how, and
// the old script store to remove once the reply is out.
func land(s *staging, name string) (how, oldStore string, err error) {
	pfd, sfd := int(s.parent.Fd()), int(s.dir.Fd())
	if err := lockDir(s.parent, true); err != nil {
		return "", "", fmt.Errorf("lock %s: %w", s.parentPath, err)
	}
	defer unix.Flock(pfd, unix.LOCK_UN)
	sweep(s.parent, s.name)

	var st unix.Statx_t
	err = unix.Statx(pfd, name, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_INO, &st)
	if err == unix.ENOENT {
		return "noreplace", "", renameNoReplace(sfd, treeName, pfd, name)
	}
	if err != nil {
		return "", "", err
	}
	dest := filepath.Join(s.parentPath, name)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if isMountPoint(pfd, name, &st) {
			return "", "", fmt.Errorf("%s is a mount point, which cannot be replaced: upload into it instead (to %s/)", dest, dest)
		}
	case unix.S_IFLNK:
		if target, err := os.Readlink(dest); err == nil && isOldStoreLink(name, target) {
			oldStore = filepath.Join(oldStoreDir, name)
		}
	}
	err = unix.Renameat2(sfd, treeName, pfd, name, unix.RENAME_EXCHANGE)
	if err != unix.EINVAL && err != unix.ENOSYS {
		return "exchange", oldStore, err
	}
	// The file system (or kernel) cannot exchange: the old tree goes
	// aside, into the staging, and the new one in. The destination is
	// absent between the two renames, microseconds.
	if err := unix.Renameat(pfd, name, sfd, "old"); err != nil {
		return "", "", fmt.Errorf("move %s aside: %w", dest, err)
	}
	if err := unix.Renameat(sfd, treeName, pfd, name); err != nil {
		unix.Renameat(sfd, "old", pfd, name)
		return "", "", fmt.Errorf("land %s: %w", dest, err)
	}
	return "renames", oldStore, nil
}

// renameNoReplace renames unless the new name exists; where the kernel or
// file system cannot say so atomically, the caller's lock keeps other
// uploads out, and rename(2) refuses to put a directory over a non-empty one.
func renameNoReplace(olddir int, old string, newdir int, name string) error {
	err := unix.Renameat2(olddir, old, newdir, name, unix.RENAME_NOREPLACE)
	if err == unix.EINVAL || err == unix.ENOSYS {
		err = unix.Renameat(olddir, old, newdir, name)
	}
	return err
}

// isMountPoint says whether name in dirfd is the root of a mount: statx's
// attribute where the kernel reports it (5.8), else a device that differs
// from its parent's.
func isMountPoint(dirfd int, name string, st *unix.Statx_t) bool {
	var full unix.Statx_t
	if unix.Statx(dirfd, name, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &full) == nil &&
		full.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return full.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var parent unix.Statx_t
	if unix.Statx(dirfd, ".", 0, unix.STATX_BASIC_STATS, &parent) != nil {
		return false
	}
	return full.Dev_major != parent.Dev_major || full.Dev_minor != parent.Dev_minor
}

// isOldStoreLink says whether target is what a script-based upload of name
// made name point to.
func isOldStoreLink(name, target string) bool {
	rest, ok := strings.CutPrefix(target, oldStoreDir+"/"+name+"/v.")
	if !ok {
		return false
	}
	id, tail, ok := strings.Cut(rest, "/")
	return ok && id != "" && tail == name
}
