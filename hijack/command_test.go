package hijack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartScript runs the remote start script with this machine's sh, the
// way the container's sh will: directory, TERM and arguments arrive intact
// whatever they hold, and a missing default shell falls back to sh.
func TestStartScript(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := filepath.Join(t.TempDir(), `it's a "dir" $(touch pwned) ;`)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		argv       []string
		dir, term  string
		stdin      string
		wantOut    string
		wantErr    string
		wantStatus int
	}{
		{name: "directory and arguments", argv: []string{"sh", "-c", `pwd; printf '%s|' "$@"; echo "$TERM"`, "x", "a b", "$HOME", "'"},
			dir: dir, term: "xterm", wantOut: dir + "\na b|$HOME|'|xterm\n"},
		{name: "no directory keeps the current one", argv: []string{"sh", "-c", `[ "$(pwd)" = "$0" ] && echo same`, "PLACEHOLDER"},
			wantOut: "same\n"},
		{name: "empty TERM keeps the container's", argv: []string{"sh", "-c", `echo "$TERM"`}, wantOut: "inherited\n"},
		{name: "exit status", argv: []string{"sh", "-c", "exit 7"}, wantStatus: 7},
		{name: "missing directory", argv: []string{"true"}, dir: "/nonexistent/dir", wantStatus: 1},
		{name: "default shell missing falls back to sh", argv: nil, stdin: "echo fallback $((1+2))\n",
			wantOut: "fallback 3\n", wantErr: "\rCouldn't find \"kc-no-such-shell\" on container, retrying with \"sh\"\n\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdline := remoteCommand(tt.argv, tt.dir, tt.term)
			if tt.argv == nil {
				cmdline[len(cmdline)-1] = "kc-no-such-shell" // stands for a bash the image lacks
			}
			wd := t.TempDir()
			for i, a := range cmdline {
				if a == "PLACEHOLDER" {
					cmdline[i] = wd
				}
			}
			c := exec.Command(cmdline[0], cmdline[1:]...)
			c.Dir, c.Env = wd, append(os.Environ(), "TERM=inherited")
			c.Stdin = strings.NewReader(tt.stdin)
			var out, errOut strings.Builder
			c.Stdout, c.Stderr = &out, &errOut
			err := c.Run()
			status := 0
			if exit, ok := err.(*exec.ExitError); ok {
				status = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus || out.String() != tt.wantOut || tt.wantErr != "" && errOut.String() != tt.wantErr {
				t.Errorf("status %d, stdout %q, stderr %q; want %d, %q, %q", status, out.String(), errOut.String(), tt.wantStatus, tt.wantOut, tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(wd, "pwned")); err == nil {
				t.Error("a directory name was run as a command")
			}
		})
	}
}
