package artifacts

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
)

// upload copies local file or directory src to remoteDir/<base name of
// src>. It lands in a staging directory beside the destination and is
// moved into place only once complete (and verified), so an interrupted
// upload leaves the old destination as it was.
func upload(ctx context.Context, rem *remote, src, remoteDir string, includeIgnored bool, s settings) error {
	if err := uploadTo(ctx, rem, src, remoteDir, includeIgnored, s); err != nil {
		return fmt.Errorf("upload %s into %s: %w", src, remoteAbs(rem.workingDir, remoteDir), err)
	}
	return nil
}

func uploadTo(ctx context.Context, rem *remote, src, remoteDir string, includeIgnored bool, s settings) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	base := filepath.Base(abs)
	if base == string(filepath.Separator) || base == "." {
		return fmt.Errorf("local path %q does not name a file or directory", src)
	}
	files, err := selectFiles(ctx, abs, fi.IsDir() && !includeIgnored, s.warnf)
	if err != nil {
		return err
	}
	p := newPacker(abs, base, files, s.preserveOwner, s.warnf, nil)
	total, err := p.size()
	if err != nil {
		return err
	}

	dest := remoteAbs(rem.workingDir, remoteDir)
	var ratio float64
	sample := 0
	if s.compress == compressAuto {
		ratio = localRatio(p)
		if total >= smallTransfer {
			sample = sampleBytes
		}
	}
	c, err := rem.probe(ctx, dest, false, false, sample, 0)
	if err != nil {
		return err
	}
	if c.kind != "dir" && c.kind != "none" {
		return fmt.Errorf("%s exists in the container and is not a directory", dest)
	}
	useGzip, err := chooseGzip(s.compress, c.gzip, true, total, ratio, c.linkBytesPerSec)
	if err != nil {
		return err
	}
	verify := s.verify && c.sha256sum && c.find
	if s.verify && !verify {
		s.warnf("warning: the container has no sha256sum or find; the upload is not verified\n")
	}
	suffix, err := randomSuffix()
	if err != nil {
		return err
	}
	u := &uploader{rem: rem, p: p, base: base, dest: dest, gzip: useGzip, verify: verify,
		staging: path.Join(dest, ".kubectl-concourse-upload-"+suffix),
		old:     path.Join(dest, ".kubectl-concourse-old-"+suffix)}
	u.tarOpts = []string{"-o"} // extract as the container's user, not ours
	if s.preserveOwner {
		u.tarOpts = []string{"--numeric-owner"}
	}
	if c.gnuTar {
		u.tarOpts = append(u.tarOpts, "-p") // GNU tar applies the umask otherwise
	}
	b := s.progress.bar("uploading "+base, total)
	p.progress = b.counter()
	err = u.run(ctx, s)
	if err != nil {
		if rerr := rem.remove(ctx, u.staging); rerr != nil {
			s.warnf("warning: could not remove staging directory %s in the container: %v\n", u.staging, rerr)
		}
	}
	b.end(err == nil)
	return err
}

// selectFiles chooses what to upload from dir as fly does: nil (everything)
// outside a git work tree or without git, and with --include-ignored
// (byGit false); else what gitFiles lists. A git that fails otherwise is an
// error, not a silent upload of everything.
func selectFiles(ctx context.Context, dir string, byGit bool, warnf func(string, ...any)) ([]string, error) {
	if !byGit {
		return nil, nil
	}
	files, err := gitFiles(ctx, dir)
	switch {
	case errors.Is(err, errNotWorkTree):
		return nil, nil
	case errors.Is(err, exec.ErrNotFound):
		warnf("warning: git is not installed: uploading every file of %s, as if --include-ignored\n", printers.EscapeTerminal(dir))
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("choose the files git does not ignore: %w (--include-ignored uploads every file without asking git)", err)
	}
	return files, nil
}

// errUploadStopped ends the packer when the exec ended first.
var errUploadStopped = errors.New("upload stopped")

func randomSuffix() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

type uploader struct {
	rem                      *remote
	p                        *packer
	base, dest, staging, old string
	gzip, verify             bool
	tarOpts                  []string
}

func (u *uploader) run(ctx context.Context, s settings) error {
	var skip func(string) bool // nil: send everything
	for attempt := 0; ; attempt++ {
		err := u.attempt(ctx, skip)
		if err == nil {
			return u.commit(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.retries >= 0 && attempt >= s.retries {
			return err
		}
		skip, err = u.intact(ctx, err)
		if err != nil {
			return err
		}
		s.warnf("warning: %v; resuming (retry %d)\n", err, attempt+1)
	}
}

// intact decides what a retry may leave out: with checksums, the files the
// staging directory already holds byte for byte; without, nothing (and the
// staging directory starts over).
func (u *uploader) intact(ctx context.Context, cause error) (func(string) bool, error) {
	if !u.verify {
		if err := u.rem.remove(ctx, u.staging); err != nil {
			return nil, fmt.Errorf("%w; and clearing the staging directory: %v", cause, err)
		}
		return nil, nil
	}
	m, err := u.rem.manifest(ctx, u.staging, "./"+u.base, u.base)
	if err != nil {
		return nil, nil // nothing staged yet, or unreadable: send everything
	}
	sent := map[string][32]byte{}
	for rel, sum := range u.p.sums {
		if m.sums[rel] == sum {
			sent[rel] = sum
		}
	}
	return func(rel string) bool { _, ok := sent[rel]; return ok }, nil
}

func (u *uploader) attempt(ctx context.Context, skip func(string) bool) error {
	sums, err := u.stream(ctx, skip)
	if err != nil || !u.verify {
		return err
	}
	differ, err := compare(u.p.sums, parseManifest(sums, u.base))
	if err != nil || len(differ) == 0 {
		return err
	}
	sort.Strings(differ)
	return fmt.Errorf("%d staged files differ from the local sha256 (first: %q)", len(differ), path.Join(u.base, differ[0]))
}

// stream sends the archive; with verification on, the same exec returns
// the staged files' sha256 manifest.
func (u *uploader) stream(ctx context.Context, skip func(string) bool) (string, error) {
	pr, pw := io.Pipe()
	packErr := make(chan error, 1)
	go func() {
		var w io.Writer = pw
		var zw *gzip.Writer
		if u.gzip {
			zw, _ = gzip.NewWriterLevel(pw, gzip.BestSpeed)
			w = zw
		}
		err := u.p.pack(w, skip)
		if err == nil && zw != nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
		packErr <- err
	}()
	args := []string{u.staging, compressNone, "-"}
	if u.gzip {
		args[1] = compressGzip
	}
	var sums strings.Builder
	var out io.Writer
	if u.verify {
		args[2], out = "./"+u.base, &sums
	}
	err := u.rem.run(ctx, receiveScript, append(args, u.tarOpts...), pr, out)
	pr.CloseWithError(errUploadStopped) // stops the packer if the exec ended first
	if perr := <-packErr; perr != nil && !errors.Is(perr, errUploadStopped) {
		// A local failure (a file we cannot read) also breaks the remote
		// tar; it is the cause, and the one to report.
		return "", perr
	}
	if err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	return sums.String(), nil
}

func (u *uploader) commit(ctx context.Context) error {
	if err := u.rem.run(ctx, commitScript, []string{u.staging, u.dest, u.base, u.old}, nil, nil); err != nil {
		return fmt.Errorf("move %s into place: %w", path.Join(u.dest, u.base), err)
	}
	return nil
}
