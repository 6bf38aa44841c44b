package transfer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/pgzip"
	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"k8s.io/cli-runtime/pkg/printers"
)

// upload copies local file or directory src to remoteDir/<base name of
// src>. It arrives in a staging directory beside the destination and lands
// only once complete (and verified), in one rename, so that an interrupted
// or failed upload leaves the old destination as it was (scripts.go has the
// layout).
func upload(ctx context.Context, rem *remote, src, remoteDir string, includeIgnored bool, s settings) error {
	if err := uploadTo(ctx, rem, src, remoteDir, "", includeIgnored, s); err != nil {
		return fmt.Errorf("upload %s into %s: %w", src, RemoteAbs(rem.workingDir, remoteDir), withRemedy(err))
	}
	return nil
}

// uploadTo uploads src as remoteDir/<its base name>, through staging and
// one rename; or, when into is set, straight into remoteDir itself, a
// directory nothing uses yet (a volume of a task that has not started), so
// that remoteDir ends up holding what src holds.
func uploadTo(ctx context.Context, rem *remote, src, remoteDir, into string, includeIgnored bool, s settings) error {
	l, err := planLocal(rem, src, remoteDir, into)
	if err != nil {
		return err
	}
	if s.agent == agentOff {
		if err := l.measure(ctx, includeIgnored, s); err != nil {
			return err
		}
		return uploadByScripts(ctx, rem, l, s)
	}
	// The agent starts (its binary crossing the link) while the local tree
	// is selected and measured: they need nothing of each other.
	type launched struct {
		sess *client.Session
		err  error
	}
	started := make(chan launched, 1)
	go func() {
		sess, err := launchAgent(ctx, rem, l.dest, s)
		started <- launched{sess, err}
	}()
	merr := l.measure(ctx, includeIgnored, s)
	r := <-started
	if merr != nil {
		if r.sess != nil {
			r.sess.Close()
		}
		return merr
	}
	switch {
	case r.err == nil:
		b := s.progress.bar("uploading "+l.base, l.total)
		l.p.progress = b.counter()
		err = uploadByAgent(ctx, rem, r.sess, l.p, l.dest, l.name, l.into, agentCodec(s.compress, l.total, l.ratio, r.sess.BinaryRate), s)
		b.end(err == nil)
		return err
	case !errors.Is(r.err, client.ErrUnavailable) || s.agent == agentOnly:
		return r.err
	}
	s.verbosef("upload: through the container's shell scripts: %v\n", r.err)
	return uploadByScripts(ctx, rem, l, s)
}

// localUpload is an upload as the local side knows it: planned before the
// container is asked anything, measured while the agent starts.
type localUpload struct {
	abs         string
	p           *packer
	base        string // the local name, for the progress bar
	dest, name  string // it lands as dest/name
	into        bool   // in place into dest (uploadTo's into)
	dir         bool
	total       int64 // bytes of its regular files
	count       int   // and how many
	ratio, rate float64
}

// planLocal checks that src names a file or directory and names where it
// goes, reading nothing more of it.
func planLocal(rem *remote, src, remoteDir, into string) (localUpload, error) {
	var l localUpload
	abs, err := filepath.Abs(src)
	if err != nil {
		return l, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return l, err
	}
	l.abs, l.base, l.dir, l.into = abs, filepath.Base(abs), fi.IsDir(), into != ""
	if l.base == string(filepath.Separator) || l.base == "." {
		return l, fmt.Errorf("local path %q does not name a file or directory", src)
	}
	if l.base == stateDirName {
		return l, fmt.Errorf("%s is the name of the plugin's own directory beside uploads; rename %s", stateDirName, src)
	}
	l.dest, l.name = RemoteAbs(rem.workingDir, remoteDir), l.base
	if l.into {
		if l.dest, l.name, err = SplitRemote(RemoteAbs(rem.workingDir, into)); err != nil {
			return l, err
		}
	}
	return l, nil
}

// measure selects the files (fly's selection) and measures them: size,
// count and, for --compress auto, how well and how fast they compress
// here.
func (l *localUpload) measure(ctx context.Context, includeIgnored bool, s settings) error {
	files, err := selectFiles(ctx, l.abs, l.dir && !includeIgnored, s.warnf)
	if err != nil {
		return err
	}
	l.p = newPacker(l.abs, l.name, files, s.preserveOwner, s.warnf, nil)
	if l.total, l.count, err = l.p.size(); err != nil {
		return err
	}
	if s.compress == compressAuto {
		l.ratio, l.rate = localRatio(l.p)
	}
	return nil
}

// uploadByScripts is the upload where the agent cannot run: busybox or
// GNU scripts probe the container, receive the tar, verify and land it.
func uploadByScripts(ctx context.Context, rem *remote, l localUpload, s settings) error {
	// The link's speed decides compression and how to verify; a sample of
	// it costs its time on a slow link (42 ms for 1 MiB at 25 MB/s).
	sample := 0
	switch {
	case l.total < smallTransfer:
	case s.compress == compressAuto && l.ratio > 0 && l.ratio <= maxRatio:
		sample = sampleBytes
	case s.verify:
		sample = verifySampleBytes
	}
	u, err := newUploader(rem, l)
	if err != nil {
		return err
	}
	if !u.into {
		u.landing = rem.startAwaited(ctx, awaitedCommitScript, u.commitArgs())
		defer func() {
			if u.landing != nil { // never told to land
				u.landing.drop()
			}
		}()
	}
	// The first attempt probes and receives in one exec: the script waits
	// for this side's decision between the two.
	c, first, err := startProbedRetrying(ctx, rem, s, uploadScript, u.receiveArgs(), probeRequest{path: l.dest, sample: sample})
	if err != nil {
		return err
	}
	u.first = first
	defer func() {
		if u.first != nil { // never told to go on: it ends having touched nothing
			u.first.stop()
		}
	}()
	if c.kind != "dir" && c.kind != "none" {
		return fmt.Errorf("%s exists in the container and is not a directory", l.dest)
	}
	if err := u.decide(c, l, s); err != nil {
		return err
	}
	b := s.progress.bar("uploading "+l.base, l.total)
	l.p.progress = b.counter()
	err = u.run(ctx, s)
	if err != nil && !u.into {
		if aerr := rem.abort(ctx, u.staging); aerr != nil {
			s.warnf("warning: could not remove staging directory %s in the container: %v\n", u.staging, aerr)
		}
	}
	b.end(err == nil)
	return err
}

// newUploader lays out the scripts' upload of l: its state directory
// beside the destination, staging, pid file and end marker.
func newUploader(rem *remote, l localUpload) (*uploader, error) {
	id, err := randomSuffix()
	if err != nil {
		return nil, err
	}
	state := path.Join(l.dest, stateDirName, l.name)
	u := &uploader{rem: rem, p: l.p, base: l.name, dest: l.dest,
		state: state, id: id, staging: path.Join(state, "staging."+id), kind: "file"}
	u.pids = u.staging + ".pids"
	if l.dir {
		u.kind = "dir"
	}
	if l.into {
		// Nothing to land: it arrives in place, and a failure is the
		// caller's to clean (the whole pod goes).
		u.staging, u.pids, u.into = l.dest, "/tmp/.kubectl-concourse-receive."+id+".pids", true
	}
	u.endName = endEntryPrefix + u.id
	if u.into && u.kind == "dir" {
		// Beside the tree is the caller's directory, maybe not writable
		// (a volume's mount point's parent): the marker goes inside, for
		// the moment between tar and the check.
		u.endName = path.Join(u.base, u.endName)
	}
	return u, nil
}

// decide sets how the scripts' upload goes from what the probe found (c)
// and the settings: compression, the digest and where it is taken (the
// stream as it arrives, or the files once tar is done, in batches), tar's
// options. It asks nothing of the container.
func (u *uploader) decide(c caps, l localUpload, s settings) error {
	codec := ""
	if c.gzip {
		codec = compressGzip // the plugin compresses; the container only needs gunzip
	}
	z, err := chooseCompression(s.compress, c, linkChoice{upload: true, size: l.total, ratio: l.ratio, codec: codec,
		linkRate: c.linkBytesPerSec, senderRate: l.rate})
	if err != nil {
		return err
	}
	u.gzip = z == compressGzip
	if s.verify {
		if u.dig = chooseDigest(c); u.dig == nil {
			s.warnf("warning: the container has no md5sum, sha256sum or find; the files' contents are not verified (only that the stream arrived whole)\n")
		}
	}
	if u.dig != nil {
		u.p.newHash = u.dig.newHash
	}
	// Over a slow link the container's CPU waits for the stream: it can
	// hash the stream as it arrives, for nothing, instead of the files
	// once tar is done (busybox's tee copies in 1 KiB pieces: about 190
	// MB/s on an idle core, which only a slow link leaves it).
	u.streamSum = u.dig != nil && c.tee && c.mkfifo && c.linkBytesPerSec > 0 && c.linkBytesPerSec < streamSumLinkRate
	u.p.hashLater = u.dig != nil && !u.streamSum // the files are compared after tar, not the stream
	if u.p.hashLater {
		u.sumBatch = sumBatch(l.total, l.count)
	}
	u.tarOpts = []string{"-o"} // extract as the container's user, not ours
	if s.preserveOwner {
		u.tarOpts = []string{"--numeric-owner"}
	}
	if c.gnuTar {
		u.tarOpts = append(u.tarOpts, "-p") // GNU tar applies the umask otherwise
	}
	return nil
}

// startProbedRetrying starts a transfer script (startProbed), again
// after a broken stream (the link sample is the longest part of a probe).
func startProbedRetrying(ctx context.Context, rem *remote, s settings, script string, args []string, q probeRequest) (caps, *session, error) {
	for attempt := 0; ; attempt++ {
		c, sess, err := rem.startProbed(ctx, script, args, q)
		if err == nil || !transient(err) || ctx.Err() != nil || s.retries >= 0 && attempt >= s.retries {
			return c, sess, err
		}
		s.warnf("warning: %v; probing again (retry %d)\n", err, attempt+1)
	}
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

type uploader struct {
	rem                *remote
	p                  *packer
	base, dest         string
	state, id, staging string // staging: where it arrives
	pids               string // the file naming its receiving processes
	endName            string // the archive's last entry (endEntry)
	into               bool   // it arrives in place: no staging, no landing
	kind               string // dir or file
	gzip               bool
	dig                *digest // nil: contents not verified
	streamSum          bool    // the container hashes the stream as it arrives, not the files after
	sumBatch           int     // > 0: the container hashes its files on several cores, in batches of this many
	tarOpts            []string
	// first is the first attempt's exec, waiting after its probe for the
	// decision; nil once taken.
	first *session
	// landing is the commit's exec, started with the first attempt and
	// waiting to be told to land; nil once taken, and when into.
	landing *awaited
}

// commitArgs are commitScript's arguments.
func (u *uploader) commitArgs() []string {
	return []string{u.state, u.id, u.dest, u.base, u.kind}
}

// receiveArgs are receive's arguments (receiveFunc).
func (u *uploader) receiveArgs() []string {
	return []string{u.staging, u.pids, u.endName, "./" + u.base}
}

// decision is receive's first line of stdin: how the archive that follows
// comes and what to check, for the attempt whose end entry holds nonce.
func (u *uploader) decision(nonce string) string {
	z, mode, sum := compressNone, "none", "-"
	if u.gzip {
		z = compressGzip
	}
	if u.dig != nil {
		mode, sum = "files", u.dig.tool
		if u.streamSum {
			mode = "stream"
		}
	}
	fields := []string{"go", z, mode, sum, strconv.Itoa(u.sumBatch), nonce}
	return strings.Join(append(fields, u.tarOpts...), " ") + "\n"
}

// sumBatch is how many files the container hashes in each of the batches
// it spreads over its cores once tar is done (sumFilesParallel), or 0 when
// one md5sum does as well: the parallel start costs a few processes (a few
// milliseconds), which a tree pays back once its hashing takes tens. A
// busybox md5sum here costs about 25 µs a file and 1.7 ms a MiB, so the
// threshold counts each file as 16 KiB. The batches are small enough to
// share the files out evenly (16 or more of them) and large enough that
// starting a batch is a small part of it.
func sumBatch(bytes int64, files int) int {
	const minWork = 16 << 20
	if files < 64 || bytes+int64(files)*(16<<10) < minWork {
		return 0
	}
	return min(max((files+15)/16, 16), 256)
}

// streamSumLinkRate: below this link speed (bytes/s) the container hashes
// the stream while it arrives.
const streamSumLinkRate = 60e6

// run sends until the staging directory holds the tree intact, resuming
// after what a retry can fix (a broken stream, a failed check) with only
// the files not yet staged intact, and then lands it.
func (u *uploader) run(ctx context.Context, s settings) error {
	var skip func(string) bool // nil: send everything
	for attempt := 0; ; attempt++ {
		err := u.attempt(ctx, skip)
		if err == nil && u.into {
			return nil
		}
		if err == nil {
			return u.commit(ctx)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) || s.retries >= 0 && attempt >= s.retries {
			return err
		}
		s.warnf("warning: %v; resuming (retry %d)\n", err, attempt+1)
		skip = u.intact(ctx, s)
	}
}

// intact decides what a retry may leave out: with checksums, the files the
// staging directory already holds byte for byte; without, nothing (and the
// staging directory starts over). The previous attempt's receiver is ended
// first, so that it cannot write over the next one's files.
func (u *uploader) intact(ctx context.Context, s settings) func(string) bool {
	if u.dig == nil && !u.into {
		if err := u.rem.abort(ctx, u.staging); err != nil {
			s.warnf("warning: clearing the staging directory: %v\n", err)
		}
		return nil
	}
	if err := u.rem.run(ctx, settleScript, []string{u.pids}, nil, nil); err != nil {
		s.warnf("warning: ending the previous attempt: %v; sending everything\n", err)
		return nil
	}
	if u.dig == nil {
		return nil
	}
	m, err := u.rem.manifest(ctx, u.staging, "./"+u.base, u.base, u.dig)
	if err != nil {
		return nil // nothing staged yet, or unreadable: send everything
	}
	sent := map[string]bool{}
	for rel, sum := range u.p.sums {
		if got, ok := m[rel]; ok && got == sum {
			sent[rel] = true
		}
	}
	return func(rel string) bool { return sent[rel] }
}

func (u *uploader) attempt(ctx context.Context, skip func(string) bool) error {
	staged, err := u.stream(ctx, skip)
	if err != nil || u.dig == nil || u.streamSum {
		return err // a stream checksum is compared by stream
	}
	if differ := compare(u.p.sums, staged); len(differ) > 0 {
		return fmt.Errorf("%d staged files: %w (first: %q)", len(differ), errMismatch, path.Join(u.base, differ[0]))
	}
	return nil
}

// stream sends the archive, which ends with an entry whose content is new
// for each attempt: the container lands nothing unless tar extracted it
// (a cut stream can look like a whole one to tar and to the exec). With
// verification on, the same exec returns the staged files' sums.
func (u *uploader) stream(ctx context.Context, skip func(string) bool) (manifest, error) {
	nonce, err := randomSuffix()
	if err != nil {
		return nil, err
	}
	end := endEntry{name: u.endName, content: nonce}
	sess := u.first
	u.first = nil
	if sess == nil {
		sess = u.rem.start(ctx, receiveScript, u.receiveArgs())
	}
	packErr := make(chan error, 1)
	var sent hash.Hash // what went into the exec, when the container hashes that
	var sink io.Writer = sess.stdin
	if u.streamSum {
		sent = u.dig.newHash()
		sink = io.MultiWriter(sess.stdin, sent)
	}
	hashed := make(chan struct{})
	defer func() { <-hashed }() // the next attempt's pack must not race the sums
	go func() {
		defer close(hashed)
		_, err := io.WriteString(sess.stdin, u.decision(nonce))
		if err == nil {
			w := sink
			var zw *pgzip.Writer
			if u.gzip {
				zw = newUploadGzip(sink)
				w = zw
			}
			err = u.p.pack(w, skip, end)
			if err == nil && zw != nil {
				err = zw.Close()
			}
		}
		sess.stdin.CloseWithError(err)
		packErr <- err
		// After a broken stream too: a retry leaves out what the
		// container holds intact, which it can only tell from the sums.
		if u.p.hashLater && (err == nil || errors.Is(err, errScriptEnded)) {
			u.p.sumSent(ctx.Done())
		}
	}()
	// What the script prints once tar is done: the stream's checksum
	// line, or the staged files' sums.
	var line limitedBuffer
	var parsed manifestResult
	switch {
	case u.streamSum:
		_, _ = io.Copy(&line, sess.out)
	case u.dig != nil:
		parsed.m, parsed.err = parseSums(sess.out, u.base, u.dig)
	}
	_, _ = io.Copy(io.Discard, sess.out)
	err = <-sess.done
	if perr := <-packErr; perr != nil && !errors.Is(perr, errScriptEnded) {
		// A local failure (a file we cannot read) also breaks the remote
		// tar; it is the cause, and the one to report.
		return nil, perr
	}
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if u.streamSum {
		return nil, checkStreamSum(line.String(), sent, u.dig)
	}
	if u.dig == nil {
		return nil, nil
	}
	if parsed.err != nil {
		return nil, &streamError{fmt.Errorf("%s of the staged files: %w", u.dig.name, parsed.err)}
	}
	<-hashed // the local sums, hashed while the container hashed its files
	return parsed.m, nil
}

// endEntryPrefix names an upload's end entry (endEntry), beside its top
// entry: with the upload's ID, so that concurrent uploads into one
// directory never share it.
const endEntryPrefix = ".kubectl-concourse-end."

// commit lands the staged tree in one rename, under the destination's
// lock: through the commit exec started with the first attempt when it
// still waits, else through an exec of its own.
func (u *uploader) commit(ctx context.Context) error {
	// Not cancelled with ctx: a commit that began ends, so that the lock
	// is released and the destination is whole.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var said limitedBuffer
	err := errAwaitedEnded
	if l := u.landing; l != nil {
		u.landing = nil
		if err = l.goOn(ctx, "commit"); err == nil {
			_, _ = io.Copy(&said, l.sess.out)
			err = l.release()
		}
	}
	if errors.Is(err, errAwaitedEnded) {
		err = u.rem.run(ctx, commitScript, u.commitArgs(), nil, &said)
	}
	where := path.Join(u.dest, u.base)
	switch {
	case strings.Contains(said.String(), "landed "+u.id+"\n"):
		return nil // its last words: what follows them cannot undo the landing
	case err == nil || errors.Is(err, podexec.ErrExitLost):
		// It may have landed: only its answer is known to be lost.
		return fmt.Errorf("land %s: the container's answer was cut on the way, so whether the upload landed is unknown; upload again (the tree is replaced whichever is there)", where)
	}
	return fmt.Errorf("land %s: %w", where, err)
}

// checkStreamSum compares the container's checksum line for the stream it
// received ("<hex>  -") with what was sent.
func checkStreamSum(line string, sent hash.Hash, d *digest) error {
	got, _, _ := strings.Cut(line, " ")
	want := hex.EncodeToString(sent.Sum(nil))
	if len(got) != d.hexLen {
		return &streamError{fmt.Errorf("no %s of the stream from the container (it printed %q)", d.name, printers.EscapeTerminal(line))}
	}
	if got != want {
		return fmt.Errorf("the stream the container received: %w (%s %s, sent %s)", errMismatch, d.name, got, want)
	}
	return nil
}

// limitedBuffer keeps the first 4 KiB written to it: a line is expected,
// and the container is hostile.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
