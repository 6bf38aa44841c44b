//go:build linux

package agent

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// manifest answers the manifest of this agent's staging (or, after a
// retry's receive reused one, of that one): a data stream of entries, then
// a reply with the digest.
func (a *agent) manifest(req protocol.Request) error {
	var entries []protocol.Entry
	var err error
	switch {
	case a.stage == nil:
		err = fmt.Errorf("manifest: nothing received")
	case req.Staging != "" && string(req.Staging) != a.stage.name:
		err = fmt.Errorf("manifest: staging %q is not this agent's", req.Staging)
	default:
		entries, err = walkManifest(a.stage.root, a.stage.tree)
	}
	dw := frame.NewDataWriter(a.fw)
	if err == nil {
		err = protocol.WriteManifest(dw, entries)
	}
	if cerr := dw.Close(); cerr != nil {
		return cerr
	}
	if err != nil {
		return a.send(protocol.Reply{Error: err.Error()})
	}
	return a.send(protocol.Reply{Digest: protocol.ManifestDigest(entries)})
}

// walkManifest lists the tree top in root, hashing its regular files.
func walkManifest(root *os.Root, top string) ([]protocol.Entry, error) {
	var entries []protocol.Entry
	err := walk(root, top, func(rel string, fi fs.FileInfo, in at) error {
		e, err := fileEntry(in, fi)
		if err != nil {
			return err
		}
		e.Path = protocol.Name(relToTop(top, rel))
		entries = append(entries, e)
		return nil
	})
	return entries, err
}

// fileEntry is the manifest entry of what in names, whose Lstat is fi.
func fileEntry(in at, fi fs.FileInfo) (protocol.Entry, error) {
	rel := in.rel
	e := protocol.Entry{Path: protocol.Name(rel), Mode: permBits(fi)}
	switch {
	case fi.Mode().IsRegular():
		e.Kind, e.Size = protocol.KindFile, fi.Size()
		f, err := in.open()
		if err != nil {
			return e, err
		}
		e.SHA256, err = protocol.ContentSHA256(f)
		f.Close()
		if err != nil {
			return e, err
		}
	case fi.IsDir():
		e.Kind = protocol.KindDir
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := in.readlink()
		if err != nil {
			return e, err
		}
		e.Kind, e.Link = protocol.KindSymlink, protocol.Name(target)
	default:
		return e, fmt.Errorf("%s: neither a file, a directory nor a symlink", rel)
	}
	return e, nil
}

// permBits are the mode's permission bits as the kernel has them (07777).
func permBits(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Mode & 0o7777
	}
	return uint32(fi.Mode().Perm())
}

// relToTop is rel's manifest path: "." for top itself.
func relToTop(top, rel string) string {
	if rel == top {
		return "."
	}
	return rel[len(top)+1:]
}
