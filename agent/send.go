//go:build linux

package agent

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/agent/codec"
	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// sendTree sends req.Path as a tar, named by its base name at the top, as a
// data stream compressed with req.Codec; then the manifest of what it sent
// (each file hashed as it was read, unless req.NoFileSums) as a second
// data stream; then a reply with the digest. A failure midway ends the tar
// stream without its end, so the plugin's reader sees it cut, and the
// reply says why.
func (a *agent) sendTree(req protocol.Request) error {
	dw := frame.NewDataWriter(a.fw)
	entries, sendErr := a.tarTree(string(req.Path), req.Codec, !req.NoFileSums, dw)
	if err := dw.Close(); err != nil {
		return err
	}
	mw := frame.NewDataWriter(a.fw)
	if sendErr == nil {
		if err := protocol.WriteManifest(mw, entries); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	if sendErr != nil {
		return a.send(protocol.Reply{Error: sendErr.Error()})
	}
	reply := protocol.Reply{Digest: protocol.ManifestDigest(entries)}
	for _, e := range entries {
		if e.Kind == protocol.KindFile {
			reply.Files++
			reply.Bytes += e.Size
		}
	}
	return a.send(reply)
}

func (a *agent) tarTree(p, codecName string, sums bool, w io.Writer) ([]protocol.Entry, error) {
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("send: %q is not an absolute path", p)
	}
	// The path itself may be a link to what to send, as for tar's
	// operand; nothing below it is followed.
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(filepath.Dir(real))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	top, name := filepath.Base(real), filepath.Base(p)

	cw, err := codec.NewWriter(codecName, w)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(cw, 256<<10)
	tw := tar.NewWriter(bw)
	buf := make([]byte, 256<<10)
	var entries []protocol.Entry
	err = walk(root, top, func(rel string, fi fs.FileInfo, in at) error {
		var err error
		mp := relToTop(top, rel)
		e := protocol.Entry{Path: protocol.Name(mp), Mode: permBits(fi)}
		var link string
		switch {
		case fi.Mode().IsRegular():
			e.Kind, e.Size = protocol.KindFile, fi.Size()
		case fi.IsDir():
			e.Kind = protocol.KindDir
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = in.readlink(); err != nil {
				return err
			}
			e.Kind, e.Link = protocol.KindSymlink, protocol.Name(link)
		default:
			return nil // sockets, fifos, devices: not transferred
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		if mp != "." {
			hdr.Name = name + "/" + mp
		}
		hdr.Mode = int64(e.Mode)
		hdr.Uname, hdr.Gname = "", ""
		// Whole seconds, as pack sends: sub-second times would cost a PAX
		// record per file.
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = fi.ModTime().Truncate(1e9), time.Time{}, time.Time{}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if e.Kind == protocol.KindFile {
			f, err := in.open()
			if err != nil {
				return err
			}
			var data io.Reader = io.LimitReader(f, e.Size)
			var h hash.Hash
			if sums {
				h = sha256.New()
				data = io.TeeReader(data, h)
			}
			n, err := io.CopyBuffer(tw, data, buf)
			f.Close()
			if err == nil && n != e.Size {
				err = fmt.Errorf("%s shrank while it was sent", mp)
			}
			if err != nil {
				return err
			}
			if sums {
				e.SHA256 = hex.EncodeToString(h.Sum(nil))
			}
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		bw.Flush()
		cw.Close()
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return entries, cw.Close()
}
