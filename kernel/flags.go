package kernel

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"

	"github.com/spf13/pflag"

	"github.com/kubectl-concourse/kubectl-concourse/helper"
)

// The flags several commands share, each defined here once: its name, its
// help and its check.

// AddHelperImageFlag binds --helper-image to image; usedFor says what the
// command runs the image as ("Image of ..."), which differs by command.
func AddHelperImageFlag(fs *pflag.FlagSet, image *string, usedFor string) {
	fs.StringVar(image, "helper-image", *image, usedFor)
}

// ValidateHelperImage checks --helper-image.
func ValidateHelperImage(image string) error {
	if image == "" {
		return errors.New("--helper-image must name an image")
	}
	return nil
}

// AddKubeletDirFlag binds --kubelet-dir to dir.
func AddKubeletDirFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "kubelet-dir", *dir, "Root directory of the kubelet on a finished step's node, where its emptyDirs are (default: asked of the kubelet, which needs get on nodes/proxy, else "+helper.DefaultKubeletDir+")")
}

// ValidateKubeletDir checks --kubelet-dir ("": asked of the kubelet).
func ValidateKubeletDir(dir string) error {
	if dir != "" && !path.IsAbs(dir) {
		return fmt.Errorf("--kubelet-dir %q must be an absolute path", dir)
	}
	return nil
}

// Colour modes of --color.
const (
	ColorAuto   = "auto"
	ColorAlways = "always"
	ColorNever  = "never"
)

// AddColorFlag binds --color to mode; what says what is coloured.
func AddColorFlag(fs *pflag.FlagSet, mode *string, what string) {
	fs.StringVar(mode, "color", *mode, what+": auto (only on a terminal), always or never")
}

// ValidateColor checks --color.
func ValidateColor(mode string) error {
	if !slices.Contains([]string{ColorAuto, ColorAlways, ColorNever}, mode) {
		return fmt.Errorf("--color %q: want auto, always or never", mode)
	}
	return nil
}

// UseColor decides --color for w: auto colours a terminal only
// (isTerminal, cli-runtime's AllowsColorOutput in a command, which also
// honours TERM=dumb and NO_COLOR).
func UseColor(mode string, isTerminal func(io.Writer) bool, w io.Writer) bool {
	switch mode {
	case ColorAlways:
		return true
	case ColorNever:
		return false
	}
	return isTerminal != nil && isTerminal(w)
}
