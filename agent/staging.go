//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// treeName is the tree's name inside its staging directory: the staging
// itself never moves, the tree is exchanged with the destination, so the old
// tree ends inside the staging and goes with it.
const treeName = "t"

// staging is a directory beside the destination that holds one upload's
// tree until commit lands it. The agent that owns it holds an exclusive
// flock on it for as long as it lives: a staging whose flock is free
// belongs to a killed agent, and the next commit beside it sweeps it.
type staging struct {
	parentPath string
	parent     *os.File // the destination's parent, for *at calls and the commit lock
	name       string   // base name, protocol.StagingPrefix...
	dir        *os.File // the staging, flocked
	root       *os.Root // the staging, for extraction that cannot leave it
	// tree is the tree's name in root: treeName, or "." in place.
	tree string
	// inPlace: root is the destination itself (newInPlace), which is the
	// caller's: nothing to land, nothing to remove.
	inPlace bool
}

// newStaging makes the staging name beside dest (a random one when name is
// empty), or takes it over when an earlier, interrupted attempt left it and
// its agent is gone: the plugin names the staging so that a retry finds it.
func newStaging(dest string, name string) (s *staging, reused bool, err error) {
	if name != "" && !validStagingName(name) {
		return nil, false, fmt.Errorf("refused staging name %q", name)
	}
	parentPath := filepath.Dir(dest)
	// The directory uploaded into is made as `mkdir -p` makes it, as the
	// plugin's scripts do.
	if err := os.MkdirAll(parentPath, 0o777); err != nil {
		return nil, false, err
	}
	parent, err := os.Open(parentPath)
	if err != nil {
		return nil, false, err
	}
	s = &staging{parentPath: parentPath, parent: parent, tree: treeName}
	// Made and locked under the parent's lock: a commit sweeping beside it
	// must not find it made but not yet locked.
	if err := lockDir(parent, true); err != nil {
		parent.Close()
		return nil, false, err
	}
	defer unix.Flock(int(parent.Fd()), unix.LOCK_UN)
	if name == "" {
		name = string(protocol.NewStagingName())
	}
	err = unix.Mkdirat(int(parent.Fd()), name, 0o700)
	reused = err == unix.EEXIST
	if err != nil && !reused {
		parent.Close()
		return nil, false, fmt.Errorf("make a staging beside %s: %w", dest, err)
	}
	if err := s.take(name); err != nil {
		if !reused {
			unix.Unlinkat(int(parent.Fd()), name, unix.AT_REMOVEDIR)
		}
		parent.Close()
		if err == unix.EWOULDBLOCK {
			err = fmt.Errorf("staging %s is in use by another agent", name)
		}
		return nil, false, err
	}
	return s, reused, nil
}

// newInPlace takes dest itself, made as `mkdir -p` makes it, as the place a
// receive extracts into (protocol.Request.InPlace). Its flock, waited for,
// keeps a retry's agent out until the earlier attempt's agent has ended (the
// end of its stdin ends it), so that two never write into it at once.
// reused says that it already holds something.
func newInPlace(dest string) (s *staging, reused bool, err error) {
	if err := os.MkdirAll(dest, 0o777); err != nil {
		return nil, false, err
	}
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", dest, err)
	}
	dir := os.NewFile(uintptr(fd), dest)
	if err := lockDir(dir, true); err != nil {
		dir.Close()
		return nil, false, fmt.Errorf("lock %s: %w", dest, err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		dir.Close()
		return nil, false, err
	}
	s = &staging{parentPath: filepath.Dir(dest), dir: dir, root: root, tree: ".", inPlace: true}
	d, err := root.Open(".")
	if err != nil {
		s.close()
		return nil, false, err
	}
	names, _ := d.Readdirnames(1)
	d.Close()
	return s, len(names) > 0, nil
}

func validStagingName(n string) bool {
	return strings.HasPrefix(n, protocol.StagingPrefix) && !strings.ContainsRune(n, '/') && n != protocol.StagingPrefix
}

// take opens and locks the staging name, failing at once if another agent
// holds it.
func (s *staging) take(name string) error {
	fd, err := unix.Openat(int(s.parent.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(fd), filepath.Join(s.parentPath, name))
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		dir.Close()
		return err
	}
	root, err := os.OpenRoot(dir.Name())
	if err != nil {
		dir.Close()
		return err
	}
	s.name, s.dir, s.root = name, dir, root
	return nil
}

// lockDir takes an exclusive flock on d, waiting for it when wait is set.
// A flock dies with its holder: a killed agent leaves no lock behind.
func lockDir(d *os.File, wait bool) error {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	for {
		err := unix.Flock(int(d.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// remove removes the staging and everything in it, then releases it; in
// place, it only releases it.
func (s *staging) remove() error {
	if s.inPlace {
		s.close()
		return nil
	}
	err := emptyRoot(s.root)
	if err == nil {
		err = unix.Unlinkat(int(s.parent.Fd()), s.name, unix.AT_REMOVEDIR)
		if err == unix.ENOENT {
			err = nil
		}
	}
	s.close()
	return err
}

func (s *staging) close() {
	s.root.Close()
	s.dir.Close() // releases the flock
	if s.parent != nil {
		s.parent.Close()
	}
}

// discard ends a staging that will not be committed: at once, or, when the
// plugin vanished and asked for it, after grace, unless a retry's agent has
// taken it over by then.
func (s *staging) discard(keep bool, grace time.Duration) {
	if !keep || s.inPlace {
		s.remove()
		return
	}
	name := s.name
	s.root.Close()
	s.dir.Close()
	time.Sleep(grace)
	if s.take(name) == nil { // no retry took it
		s.remove()
		return
	}
	s.parent.Close()
}

// sweep removes the stagings beside it whose flock is free (their agents
// were killed). The caller holds the parent's lock, so none is being made.
func sweep(parent *os.File, own string) {
	d, err := os.Open(parent.Name())
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if n == own || !validStagingName(n) {
			continue
		}
		s := &staging{parentPath: parent.Name(), parent: parent}
		if s.take(n) != nil {
			continue // its agent lives
		}
		emptyRoot(s.root)
		unix.Unlinkat(int(parent.Fd()), n, unix.AT_REMOVEDIR)
		s.root.Close()
		s.dir.Close()
	}
}

// emptyRoot removes everything inside r.
func emptyRoot(r *os.Root) error {
	d, err := r.Open(".")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if rerr := r.RemoveAll(n); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}
