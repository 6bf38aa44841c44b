// Package transfer moves files in and out of a container as tar streamed
// over exec, or through the plugin's own agent in the container where it
// runs: fly execute's file selection, integrity checks, resume, atomic
// landing on both sides and an extractor that trusts nothing the container
// sends. Its callers are the upload and download commands (package
// artifacts) and execute's inputs and outputs.
package transfer

import (
	"context"
	"fmt"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// Endpoint is the container a transfer talks to: a step's, or a helper's
// beside it that mounts its volumes.
type Endpoint struct {
	Executor  podexec.Executor
	Container podexec.Container
	// WorkingDir anchors relative remote paths.
	WorkingDir string
}

func (ep Endpoint) remote() *remote {
	return &remote{exec: ep.Executor, container: ep.Container, workingDir: ep.WorkingDir}
}

// Settings are a transfer's choices, as upload's and download's flags make
// them.
type Settings struct {
	Compress       string // auto, gzip or none (ValidCompress)
	Verify         bool
	Retries        int // negative: no limit
	IncludeIgnored bool
	// PreserveOwner keeps numeric owners and groups; without it files
	// belong to whoever writes them.
	PreserveOwner bool
	Warnf         func(format string, a ...any)
	// Verbosef hears what -v asks to hear: which way a transfer went (the
	// agent or the scripts) and why. nil: nothing.
	Verbosef func(format string, a ...any)
	Progress *Progress // nil: no bar
	Agent    AgentUse  // the zero value: the agent where it runs, else the scripts
}

func (s Settings) internal() settings {
	return settings{compress: s.Compress, verify: s.Verify, retries: s.Retries, preserveOwner: s.PreserveOwner,
		warnf: s.Warnf, progress: s.Progress, agent: s.Agent, verbose: s.Verbosef}
}

// DefaultSettings are upload's and download's defaults.
func DefaultSettings(warnf func(string, ...any)) Settings {
	return Settings{Compress: compressAuto, Verify: true, Retries: 3, Warnf: warnf}
}

// ValidCompress says whether c is a Settings.Compress a transfer knows, so
// that a flag's value is refused before anything is sent.
func ValidCompress(c string) bool {
	switch c {
	case compressAuto, compressGzip, compressNone:
		return true
	}
	return false
}

// Upload copies local file or directory src to remoteDir/<base name of
// src>, as upload does: it arrives in a staging directory beside the
// destination and lands only once complete and verified, in one rename,
// so that an interrupted or failed upload leaves the old destination as it
// was (through the agent where it runs, else the scripts).
func Upload(ctx context.Context, ep Endpoint, s Settings, src, remoteDir string) error {
	return upload(ctx, ep.remote(), src, remoteDir, s.IncludeIgnored, s.internal())
}

// UploadInto uploads the contents of local directory src into remoteDir, a
// directory nothing uses yet (a volume of a task that has not started):
// fly execute's file selection, the same safety, verification and resume
// as upload, through the agent where it runs (else the scripts), but no
// staging and no landing rename: it arrives in place.
func UploadInto(ctx context.Context, ep Endpoint, s Settings, src, remoteDir string) error {
	if err := uploadTo(ctx, ep.remote(), src, remoteDir, remoteDir, s.IncludeIgnored, s.internal()); err != nil {
		return fmt.Errorf("upload %s into %s: %w", src, RemoteAbs(ep.WorkingDir, remoteDir), withRemedy(err))
	}
	return nil
}

// Download copies remote path src to localDir/<base name of src>, as
// download does: the copy replaces the old one whole, in one rename, once
// complete and verified.
func Download(ctx context.Context, ep Endpoint, s Settings, src, localDir string) error {
	return download(ctx, ep.remote(), src, localDir, s.internal())
}

// DownloadTo downloads remote path src to local path dest, which it
// replaces whole, as Download does; its error names neither, for a caller
// whose src is not the path the user named (a finished step's, read
// through a pod of the plugin's own that mounts it elsewhere) and which
// says what failed in the user's terms. A refusal of the container's
// carries its remedy.
func DownloadTo(ctx context.Context, ep Endpoint, s Settings, src, dest string) error {
	return withRemedy(downloadTo(ctx, ep.remote(), src, dest, s.internal()))
}

// DownloadAs downloads remote path src to local path dest, which it
// replaces whole in one rename once the tree is complete and verified, as
// download does (through the in-container agent where it runs, as
// s.Agent allows); a directory's own mode then follows the
// local umask, as a directory fly execute creates for an output does.
func DownloadAs(ctx context.Context, ep Endpoint, s Settings, src, dest string) error {
	src = RemoteAbs(ep.WorkingDir, src)
	in := s.internal()
	in.rootByUmask = true
	if err := downloadTo(ctx, ep.remote(), src, dest, in); err != nil {
		return fmt.Errorf("download %s into %s: %w", src, dest, withRemedy(err))
	}
	return nil
}
