package kernel

import (
	"io"
	"testing"
)

func TestValidateSharedFlags(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "": valid
	}{
		{"colour auto", ValidateColor("auto"), ""},
		{"colour never", ValidateColor("never"), ""},
		{"colour unknown", ValidateColor("yes"), `--color "yes": want auto, always or never`},
		{"kubelet dir asked", ValidateKubeletDir(""), ""},
		{"kubelet dir absolute", ValidateKubeletDir("/var/lib/k0s/kubelet"), ""},
		{"kubelet dir relative", ValidateKubeletDir("var/lib/kubelet"), `--kubelet-dir "var/lib/kubelet" must be an absolute path`},
		{"helper image", ValidateHelperImage("busybox"), ""},
		{"no helper image", ValidateHelperImage(""), "--helper-image must name an image"},
	}
	for _, tt := range tests {
		if got := errString(tt.err); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUseColor(t *testing.T) {
	terminal := func(io.Writer) bool { return true }
	pipe := func(io.Writer) bool { return false }
	tests := []struct {
		mode       string
		isTerminal func(io.Writer) bool
		want       bool
	}{
		{ColorAuto, terminal, true},
		{ColorAuto, pipe, false},
		{ColorAuto, nil, false},
		{ColorAlways, pipe, true},
		{ColorNever, terminal, false},
	}
	for _, tt := range tests {
		if got := UseColor(tt.mode, tt.isTerminal, io.Discard); got != tt.want {
			t.Errorf("UseColor(%q) = %v, want %v", tt.mode, got, tt.want)
		}
	}
}
