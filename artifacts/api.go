package artifacts

import (
	"context"
	"fmt"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// Endpoint is the container a transfer talks to, for the commands that move
// files as part of their own work (execute's inputs and outputs).
type Endpoint struct {
	Executor  podexec.Executor
	Container podexec.Container
	// WorkingDir anchors relative remote paths.
	WorkingDir string
}

// Settings are a transfer's choices, as upload's and download's flags make
// them.
type Settings struct {
	Compress       string // auto, gzip or none
	Verify         bool
	Retries        int // negative: no limit
	IncludeIgnored bool
	Warnf          func(format string, a ...any)
	Progress       *Progress // nil: no bar
	Agent          AgentUse  // the zero value: the agent where it runs, else the scripts
}

func (s Settings) internal() settings {
	return settings{compress: s.Compress, verify: s.Verify, retries: s.Retries, warnf: s.Warnf, progress: s.Progress, agent: s.Agent}
}

// DefaultSettings are upload's and download's defaults.
func DefaultSettings(warnf func(string, ...any)) Settings {
	return Settings{Compress: compressAuto, Verify: true, Retries: 3, Warnf: warnf}
}

// UploadInto uploads the contents of local directory src into remoteDir, a
// directory nothing uses yet (a volume of a task that has not started):
// fly execute's file selection, the same safety, verification and resume
// as upload, through the agent where it runs (else the scripts), but no
// staging and no landing rename: it arrives in place.
func UploadInto(ctx context.Context, ep Endpoint, s Settings, src, remoteDir string) error {
	rem := &remote{exec: ep.Executor, container: ep.Container, workingDir: ep.WorkingDir}
	if err := uploadTo(ctx, rem, src, remoteDir, remoteDir, s.IncludeIgnored, s.internal()); err != nil {
		return fmt.Errorf("upload %s into %s: %w", src, remoteAbs(ep.WorkingDir, remoteDir), withRemedy(err))
	}
	return nil
}

// DownloadAs downloads remote path src to local path dest, which it
// replaces whole in one rename once the tree is complete and verified, as
// download does (through the in-container agent where it runs, as
// s.Agent allows); a directory's own mode then follows the
// local umask, as a directory fly execute creates for an output does.
func DownloadAs(ctx context.Context, ep Endpoint, s Settings, src, dest string) error {
	rem := &remote{exec: ep.Executor, container: ep.Container, workingDir: ep.WorkingDir}
	src = remoteAbs(ep.WorkingDir, src)
	in := s.internal()
	in.rootByUmask = true
	if err := downloadTo(ctx, rem, src, dest, in); err != nil {
		return fmt.Errorf("download %s into %s: %w", src, dest, withRemedy(err))
	}
	return nil
}
