package hijack

import (
	corev1 "k8s.io/api/core/v1"
)

// defaultShell is fly's default command; fallbackShell is what fly retries
// with when the image has no bash.
const (
	defaultShell  = "bash"
	fallbackShell = "sh"
	windowsShell  = "cmd.exe"
)

// startScript runs in `sh -c` with everything variable passed as positional
// parameters, never spliced into the script: $1 is TERM ("" keeps the
// container's), $2 the directory to start in ("" keeps the runtime's),
// $3 "default" when the command is fly's default shell, then the command.
// Missing bash is handled here, in the same session, with fly's message.
const startScript = `t=$1 d=$2 f=$3; shift 3
if [ -n "$t" ]; then TERM=$t; export TERM; fi
if [ -n "$d" ]; then cd -- "$d" || exit 1; fi
if [ "$f" = default ] && ! command -v "$1" >/dev/null 2>&1; then
  printf '\rCouldn'\''t find "%s" on container, retrying with "%s"\n\r' "$1" ` + fallbackShell + ` >&2
  exec ` + fallbackShell + `
fi
if ! command -v "$1" >/dev/null 2>&1 && [ ! -e "$1" ]; then
  printf '%s: command not found\n' "$1" >&2
  exit 127
fi
exec "$@"`

// remoteCommand is what runs in the container: argv started through sh in
// dir with TERM set (argv empty: fly's default shell, bash then sh).
func remoteCommand(argv []string, dir, term string) []string {
	flag := "explicit"
	if len(argv) == 0 {
		argv, flag = []string{defaultShell}, "default"
	}
	return append([]string{fallbackShell, "-c", startScript, fallbackShell, term, dir, flag}, argv...)
}

// isWindows says whether the pod runs Windows containers, from what the
// pod itself declares; the node's label is checked only when sh is missing.
func isWindows(pod *corev1.Pod) bool {
	return pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows ||
		pod.Spec.NodeSelector[corev1.LabelOSStable] == string(corev1.Windows) ||
		pod.Labels[corev1.LabelOSStable] == string(corev1.Windows)
}
