package hijack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// enter runs the command (or fly's default shell) in a container of pod,
// starting in workingDir unless -w says otherwise. tools, when set, is a
// directory of the plugin's own tools in the container (a copy's toolbox):
// its sh starts the session, and its applets come after the image's own on
// PATH. The remote exit status comes back as a cmderr.Status.
//
// Without a TTY the session runs under podexec's exit reporter, so that a
// connection that drops (which client-go hears as a success) fails instead
// of exiting 0; its stderr reaches the user without the report. A TTY
// merges stderr into stdout, where the report could not be told from the
// session's output, so a terminal session goes without it, as do a
// command started without sh and a Windows container's, which have no sh
// to report with.
func (o *HijackOptions) enter(ctx context.Context, pod *corev1.Pod, container, workingDir, tools string) error {
	dir := workingDir
	if o.workDirSet {
		dir = o.WorkDir
	}
	return o.withTerminal(ctx, func(ctx context.Context, tty bool, s podexec.Streams, resize remotecommand.TerminalSizeQueue) error {
		req := podexec.Request{Namespace: pod.Namespace, Pod: pod.Name, Container: container, Stdin: s.In != nil, TTY: tty}
		if isWindows(pod) {
			return o.enterWindows(ctx, req, s, resize, pod, workingDir)
		}
		if tools != "" {
			req.Command = toolboxCommand(o.Command, dir, o.Term, tools)
			return o.execError(ctx, o.execShell(ctx, req, s, resize), pod, container)
		}
		req.Command = remoteCommand(o.Command, dir, o.Term)
		err := o.execShell(ctx, req, s, resize)
		if err == nil || !podexec.ExecutableMissing(err) {
			return o.execError(ctx, err, pod, container)
		}
		// Either sh is missing (a shell-less image, or Windows), or the
		// command itself exited 127: a probe tells which.
		shell, probeErr := o.hasShell(ctx, req)
		if probeErr != nil || shell {
			return o.execError(ctx, err, pod, container)
		}
		if o.nodeIsWindows(ctx, pod) {
			return o.enterWindows(ctx, req, s, resize, pod, workingDir)
		}
		where := fmt.Sprintf("container %s of pod %s", printers.EscapeTerminal(container), printers.EscapeTerminal(pod.Namespace+"/"+pod.Name))
		switch {
		case len(o.Command) == 0:
			return fmt.Errorf("%s has no shell (its image lacks sh); --debug enters it through a %s container that shares its processes and volumes", where, o.debugImage())
		case o.workDirSet && o.WorkDir != workingDir:
			return fmt.Errorf("-w needs sh in the container, and the image of %s has none; leave -w out to start in its working directory", where)
		}
		// Without sh, run the command itself: the runtime starts it in the
		// container's working directory.
		req.Command = o.Command
		return o.execError(ctx, o.Executor.Exec(ctx, req, s, resize), pod, container)
	})
}

// execShell runs req, whose command is `SH -c SCRIPT NAME ARGS...`, under
// the exit reporter (on both streams: both are the user's) unless it asks
// for a TTY.
func (o *HijackOptions) execShell(ctx context.Context, req podexec.Request, s podexec.Streams, resize remotecommand.TerminalSizeQueue) error {
	if req.TTY {
		return o.Executor.Exec(ctx, req, s, resize)
	}
	req.Command = podexec.SessionCommand(req.Command[0], req.Command[2], req.Command[4:]...)
	return podexec.ExecSession(ctx, o.Executor, req, s, resize)
}

// enterWindows runs the command as is (default cmd.exe, with no fallback):
// there is no sh to change directory with, and the runtime starts it in
// the container's working directory already.
func (o *HijackOptions) enterWindows(ctx context.Context, req podexec.Request, s podexec.Streams, resize remotecommand.TerminalSizeQueue, pod *corev1.Pod, workingDir string) error {
	if o.workDirSet && o.WorkDir != workingDir {
		return errors.New("-w is not supported in Windows containers; they start in the container's working directory")
	}
	req.Command = o.Command
	if len(req.Command) == 0 {
		req.Command = []string{windowsShell}
	}
	return o.execError(ctx, o.Executor.Exec(ctx, req, s, resize), pod, req.Container)
}

// hasShell probes for sh in the container with a command that does nothing.
func (o *HijackOptions) hasShell(ctx context.Context, req podexec.Request) (bool, error) {
	req.Command, req.Stdin, req.TTY = []string{fallbackShell, "-c", ":"}, false, false
	err := o.Executor.Exec(ctx, req, podexec.Streams{Out: io.Discard, ErrOut: io.Discard}, nil)
	switch {
	case err == nil:
		return true, nil
	case podexec.ExecutableMissing(err):
		return false, nil
	}
	return false, err
}

// nodeIsWindows reads the node's OS label; a node the user may not read is
// taken for Linux.
func (o *HijackOptions) nodeIsWindows(ctx context.Context, pod *corev1.Pod) bool {
	if pod.Spec.NodeName == "" {
		return false
	}
	node, err := o.Client.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	return err == nil && node.Labels[corev1.LabelOSStable] == string(corev1.Windows)
}

// podGone says, when pod is gone or going, that this ended the session.
func (o *HijackOptions) podGone(pod *corev1.Pod) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := o.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && (p.DeletionTimestamp != nil || p.UID != pod.UID) {
		return fmt.Sprintf("the session ended because pod %s was deleted", printers.EscapeTerminal(pod.Namespace+"/"+pod.Name))
	}
	return ""
}

// execError turns the remote exit status into the command's own (a
// cmderr.Status) and gives other failures their context.
func (o *HijackOptions) execError(ctx context.Context, err error, pod *corev1.Pod, container string) error {
	if err == nil {
		return nil
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		// The session's own status is the command's result, as in fly;
		// killed by a signal, it may say that the pod went away.
		st := cmderr.Status{Code: exit.ExitStatus(), Reason: "remote command exited"}
		if st.Code == 128+9 || st.Code == 128+15 {
			st.Explain = o.podGone(pod)
		}
		return st
	}
	if ctx.Err() != nil {
		return cmderr.Interruption(ctx) // the session's end, not a failure of its own
	}
	err = cmderr.ExplainForbidden(err, pod.Namespace, "create", "pods/exec")
	return fmt.Errorf("exec in container %s of pod %s: %w", printers.EscapeTerminal(container), printers.EscapeTerminal(pod.Namespace+"/"+pod.Name), err)
}
