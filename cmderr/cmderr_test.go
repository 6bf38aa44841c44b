package cmderr

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestExplainForbidden(t *testing.T) {
	apiDenial := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New("RBAC: no"))
	spdyDenial := errors.New(`pods "x" is forbidden: User "dev" cannot create resource "pods/exec"`)
	tests := []struct {
		name string
		err  error
		want string // "" for unchanged
	}{
		{"api status", fmt.Errorf("list: %w", apiDenial), `permission denied: you need "list" on "pods" in namespace ci`},
		{"message only (SPDY)", spdyDenial, `permission denied: you need "list" on "pods" in namespace ci`},
		{"other errors pass", errors.New("connection refused"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ExplainForbidden(tt.err, "ci", "list", "pods")
			var fe *ForbiddenError
			switch {
			case tt.want == "" && got != tt.err:
				t.Errorf("ExplainForbidden(%v) = %v, want it unchanged", tt.err, got)
			case tt.want != "" && (!errors.As(got, &fe) || got.Error()[:len(tt.want)] != tt.want):
				t.Errorf("ExplainForbidden(%v) = %v, want %q...", tt.err, got, tt.want)
			}
		})
	}
	// Explained once: an outer call keeps the inner, more precise permission.
	inner := ExplainForbidden(spdyDenial, "ci", "create", "pods/exec")
	if got := ExplainForbidden(fmt.Errorf("hijack: %w", inner), "ci", "list", "pods"); !errors.As(got, new(*ForbiddenError)) ||
		got.Error() != "hijack: "+inner.Error() {
		t.Errorf("ExplainForbidden twice = %v", got)
	}
	if !apierrors.IsForbidden(ExplainForbidden(apiDenial, "", "list", "pods")) {
		t.Errorf("the API status is lost")
	}
}

func TestUsage(t *testing.T) {
	if Usage(nil) != nil {
		t.Errorf("Usage(nil) != nil")
	}
	var u *UsageError
	if err := fmt.Errorf("flags: %w", Usagef("-x %d", 1)); !errors.As(err, &u) || u.Error() != "-x 1" {
		t.Errorf("Usagef = %v", err)
	}
}

func TestRefused(t *testing.T) {
	psa := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New(`violates PodSecurity "baseline:latest": hostPath volumes`))
	rbac := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "dev" cannot create resource "pods"`))
	policy := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil)
	tests := []struct {
		name    string
		err     error
		refused bool
	}{
		{"Pod Security", psa, true},
		{"an admission policy", policy, true},
		{"RBAC", rbac, false},
		{"not the API's", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		got := Refused(tt.err)
		var r *RefusedError
		if errors.As(got, &r) != tt.refused {
			t.Errorf("%s: Refused(%v) = %v", tt.name, tt.err, got)
		}
		if tt.refused && errors.As(ExplainForbidden(got, "ci", "create", "pods"), new(*ForbiddenError)) {
			t.Errorf("%s: ExplainForbidden names a permission for a refusal", tt.name)
		}
	}
}
