package client

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

func TestLaunchMovesOnFromNoexec(t *testing.T) {
	needAgent(t)
	noexec := t.TempDir()
	if err := syscall.Mount("tmpfs", noexec, "tmpfs", syscall.MS_NOEXEC, "size=16m"); err != nil {
		t.Skipf("cannot mount a noexec tmpfs here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(noexec, 0) })
	exe := t.TempDir()
	t.Setenv("HOME", "/nonexistent")
	for name, shell := range shells(t) {
		t.Run(name, func(t *testing.T) {
			c := podexec.Container{Shell: shell}
			s, err := Launch(t.Context(), localExecutor{}, c, Options{Dir: noexec, Candidates: []string{exe}})
			if err != nil {
				t.Fatalf("Launch: %v", err)
			}
			s.Close()
			for _, d := range []string{noexec, exe} {
				if got, _ := os.ReadDir(d); len(got) != 0 {
					t.Errorf("%s holds %v", d, got)
				}
			}
			_, err = Launch(t.Context(), localExecutor{}, c, Options{Dir: noexec, Candidates: []string{}})
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "noexec") {
				t.Errorf("Launch with only a noexec directory = %v, want ErrUnavailable (noexec)", err)
			}
		})
	}
}
