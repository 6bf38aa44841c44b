// Package workdir gives a benchmark one directory for its data and its test
// cluster's state, so that both sides of every transfer live on one file
// system the benchmark chooses: tmpfs by default (RootFlag), so that the
// figures are the tools' and not the disk's.
//
// On this project's machines the disk is ext4 without a journal, where
// creating a file after many deletions costs about 1 ms of kernel time
// (ext4's recently_deleted() scan of the inode table, perf in
// docs/benchmarks.md): extracting 5,000 files took 5 s of system time there
// and 0.13 s on tmpfs, and it made every tool take 5-7 s for the artifacts
// benchmark's tree, whatever it sent.
package workdir

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// RootFlag registers -root, where New makes its directory.
func RootFlag() *string {
	return flag.String("root", "/dev/shm", "directory for the data and the cluster's state, both sides of every transfer (empty: the system's temporary directory)")
}

// Dir is a benchmark's directory: its data beside Cluster, the test
// cluster's state directory (cluster.Options.Dir).
type Dir struct {
	Path, Cluster string
	FS            string // the file system it is on, for the header
}

// New makes a directory named prefix* under root ("": the system's
// temporary directory), with the cluster's inside.
func New(root, prefix string) (Dir, error) {
	p, err := os.MkdirTemp(root, prefix)
	if err != nil {
		return Dir{}, err
	}
	d := Dir{Path: p, Cluster: filepath.Join(p, "cluster"), FS: fsName(p)}
	if err := os.Mkdir(d.Cluster, 0o755); err != nil {
		os.RemoveAll(p)
		return Dir{}, err
	}
	return d, nil
}

// RemoveKeepingLogs deletes the directory and everything in it, once the
// cluster has stopped, for a benchmark that ends with *err: when it
// failed, the cluster's logs (its logs/ directory) are first copied to a
// new directory under the system's temporary directory, which *err then
// names, since they are how to find out why.
func (d Dir) RemoveKeepingLogs(err *error) {
	if *err != nil {
		if kept, kerr := os.MkdirTemp("", "bench-logs-"); kerr == nil {
			if kerr = os.CopyFS(kept, os.DirFS(filepath.Join(d.Cluster, "logs"))); kerr == nil {
				*err = fmt.Errorf("%w (the test cluster's logs are in %s)", *err, kept)
			} else {
				os.RemoveAll(kept) // no logs to keep: nothing left behind
			}
		}
	}
	_ = os.RemoveAll(d.Path)
}

func fsName(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "an unknown file system"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs"
	case 0xEF53:
		return "ext2/3/4"
	case 0x9123683E:
		return "btrfs"
	case 0x58465342:
		return "xfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", st.Type)
}
