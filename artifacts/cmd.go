package artifacts

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/kubectl/pkg/util/templates"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/kernel"
	"github.com/kubectl-concourse/kubectl-concourse/transfer"
)

var (
	transferLong = `

		The stream is tar over exec, as with kubectl cp, but file modes, empty directories
		and symlinks inside the tree are kept both ways, owners only with --preserve-owner.
		A symlink is sent as a symlink, wherever it points (absolute or out of the tree, as
		tar and fly keep it); only the path named is followed when it is one.
		The stream ends with a marker the receiving side checks, so a stream cut on the way
		never lands, even one the connection reports as a success; and what arrived is
		compared end to end by checksum (md5, or sha256, with the container's md5sum or
		sha256sum): every file, or over a slow link the stream itself as it passes. That
		catches damage on the way, not a hostile container, which computes its own sums. A
		broken stream is resumed (--retries) with only the files not yet intact. The copy
		lands beside the destination and replaces it in one rename only when complete, so an
		interrupted transfer leaves the old destination as it was. --compress auto compresses
		only where the link and both CPUs, measured, make that faster (over a slow link, data
		that compresses): uploads with gzip on every local core, downloads with the
		container's lzop when it has one. Progress is
		drawn on stderr when it is a terminal. A step whose image has no sh or tar is
		reached through an ephemeral helper container (--helper-image) that mounts its
		volumes.`

	uploadLong = templates.LongDesc(`
		Copy a local file or directory into the container of a Concourse build step, found by
		fly's flags, as REMOTE_DIR/NAME. REMOTE_DIR defaults to the step's working
		directory; relative paths start there.

		Files are chosen as fly execute chooses them: in a git work tree, the tracked files
		that still exist plus the untracked ones git does not ignore; everything outside
		git or with --include-ignored.

		Where it can run (linux/amd64 or arm64, a directory that lets a program run), the
		plugin's own small agent receives the upload in the container: the tree lands as a
		real directory in one atomic exchange, nothing of the plugin's stays beside it, and
		every file is compared by SHA-256. Elsewhere the container's own sh and tar do it as
		described below, and a directory lands as a symlink into .kubectl-concourse/ beside
		it. -v says which way an upload went.` + transferLong)

	uploadExample = templates.Examples(`
		# Upload the current repository into the working directory of step "unit" of build 42
		kubectl concourse upload -j main/test -b 42 -s unit .

		# Upload a build directory, ignored files included, into /tmp/inputs of a one-off build
		kubectl concourse upload -s one-off --include-ignored ./dist /tmp/inputs`)

	downloadLong = templates.LongDesc(`
		Copy a file or directory out of the container of a Concourse build step, found by
		fly's flags, to LOCAL_DIR/NAME. LOCAL_DIR defaults to the current directory;
		relative remote paths start at the step's working directory.

		A tree of about 55 MiB or 1,060 entries or more goes through the plugin's own small
		agent where it can run (linux/amd64 or arm64, a directory that lets a program run): it
		sends the tree from the container compressed (S2 where the link is fast, zstd where it
		is slow), whose checksums are checked here (with --compress none or gzip, every file's
		SHA-256 is compared instead), and the tree it lists is compared with what was written; a broken stream or
		a difference has the tree sent again (--retries). A smaller tree, whose transfer costs less than
		the agent's start, and everything where the agent cannot run, goes through the
		container's own sh and tar as described below, resuming with only the missing files.
		-v says which way a download went.

		Whatever the container sends is treated as hostile: no entry is written outside the
		destination. Symlinks land as they are, but an entry written through one (below a
		symlink, or over one), absolute names, "..", hardlinks to outside, devices, fifos and
		setuid bits are refused or dropped, and named; a refused entry fails the download.

		A step that has finished is read from its volumes, named as in the step, through a
		short-lived helper pod (--helper-image) that mounts them read-only where the step had
		them and is deleted at the end, Ctrl-C included: its claims, on the step's node when
		they need it, and its emptyDirs from the kubelet's directory on that node
		(--kubelet-dir), through a read-only host path that the cluster must admit, for as
		long as the kubelet has not torn the finished pod's volumes down.` + transferLong)

	downloadExample = templates.Examples(`
		# Download the "built" output directory of step "compile" of build 42 into ./out
		kubectl concourse download -j main/test -b 42 -s compile built ./out

		# Download a log file from a pod found by name, without progress
		kubectl concourse download --pod my-pod --container step-run -q /var/log/app.log

		# Download what a failed step left on its cache claim
		kubectl concourse download -j main/test -b 42 -s unit /tmp/build/cache ./cache`)
)

// UploadOptions is the state of one upload.
type UploadOptions struct {
	TransferOptions
	IncludeIgnored bool
	LocalPath      string
	RemoteDir      string
}

// NewUploadOptions sets every default.
func NewUploadOptions(streams genericiooptions.IOStreams) *UploadOptions {
	return &UploadOptions{TransferOptions: newTransferOptions(streams), RemoteDir: "."}
}

// Complete takes the arguments and builds the clients that are still nil.
func (o *UploadOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	if len(args) > 0 {
		o.LocalPath = args[0]
	}
	if len(args) > 1 {
		o.RemoteDir = args[1]
	}
	return o.complete(getter)
}

// Validate checks flags and arguments; it calls no API.
func (o *UploadOptions) Validate() error {
	if o.LocalPath == "" {
		return errors.New("upload needs LOCAL_PATH")
	}
	return o.validate()
}

// Run uploads.
func (o *UploadOptions) Run(ctx context.Context) error {
	return o.run(ctx, o.RemoteDir, false, func(ctx context.Context, ep transfer.Endpoint, s transfer.Settings) error {
		s.IncludeIgnored = o.IncludeIgnored
		return transfer.Upload(ctx, ep, s, o.LocalPath, o.RemoteDir)
	}, nil)
}

// DownloadOptions is the state of one download.
type DownloadOptions struct {
	TransferOptions
	RemotePath string
	LocalDir   string
}

// NewDownloadOptions sets every default.
func NewDownloadOptions(streams genericiooptions.IOStreams) *DownloadOptions {
	return &DownloadOptions{TransferOptions: newTransferOptions(streams), LocalDir: "."}
}

// Complete takes the arguments and builds the clients that are still nil.
func (o *DownloadOptions) Complete(getter genericclioptions.RESTClientGetter, _ *cobra.Command, args []string) error {
	if len(args) > 0 {
		o.RemotePath = args[0]
	}
	if len(args) > 1 {
		o.LocalDir = args[1]
	}
	return o.complete(getter)
}

// Validate checks flags and arguments; it calls no API.
func (o *DownloadOptions) Validate() error {
	if o.RemotePath == "" {
		return errors.New("download needs REMOTE_PATH")
	}
	return o.validate()
}

// Run downloads.
func (o *DownloadOptions) Run(ctx context.Context) error {
	return o.run(ctx, o.RemotePath, true, func(ctx context.Context, ep transfer.Endpoint, s transfer.Settings) error {
		return transfer.Download(ctx, ep, s, o.RemotePath, o.LocalDir)
	}, o.downloadFinished)
}

// NewCmdUpload returns `upload`.
func NewCmdUpload(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := NewUploadOptions(streams)
	cmd := &cobra.Command{
		Use:     "upload [target flags] LOCAL_PATH [REMOTE_DIR]",
		Aliases: []string{"up"},
		Short:   "Copy a local file or directory into the container of a build step",
		Long:    uploadLong,
		Example: uploadExample,
		Args:    cmderr.Args(cobra.RangeArgs(1, 2)),
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.IncludeIgnored, "include-ignored", o.IncludeIgnored, "Upload every file, also those git ignores (and .git itself)")
	return kernel.Wire(cmd, getter, o)
}

// NewCmdDownload returns `download`.
func NewCmdDownload(streams genericiooptions.IOStreams, getter genericclioptions.RESTClientGetter) *cobra.Command {
	o := NewDownloadOptions(streams)
	cmd := &cobra.Command{
		Use:     "download [target flags] REMOTE_PATH [LOCAL_DIR]",
		Aliases: []string{"down"},
		Short:   "Copy a file or directory out of the container of a build step",
		Long:    downloadLong,
		Example: downloadExample,
		Args:    cmderr.Args(cobra.RangeArgs(1, 2)),
	}
	o.addFlags(cmd)
	kernel.AddKubeletDirFlag(cmd.Flags(), &o.KubeletDir)
	return kernel.Wire(cmd, getter, o)
}
