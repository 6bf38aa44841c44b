package build

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func run(status map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
		"metadata": map[string]any{"namespace": "ci", "name": "x"},
		"status":   status,
	}}
}

func succeeded(status, reason string) map[string]any {
	return map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": status, "reason": reason}}}
}

func TestRunOf(t *testing.T) {
	tests := []struct {
		status, reason, want string
	}{
		{"True", "Succeeded", Succeeded},
		{"True", "Completed", Succeeded},
		{"Unknown", "Running", ""},
		{"False", "Failed", Failed},
		{"False", "PipelineRunTimeout", Failed},
		{"False", "TaskRunCancelled", Aborted},
		{"False", "Cancelled", Aborted},
		{"False", "StoppedRunFinally", Aborted},
		{"False", "CouldntGetTask", Errored},
	}
	for _, tt := range tests {
		if got := RunOf(run(succeeded(tt.status, tt.reason))).Status; got != tt.want {
			t.Errorf("RunOf(%s/%s).Status = %q, want %q", tt.status, tt.reason, got, tt.want)
		}
	}
	st := succeeded("True", "Completed")
	st["startTime"], st["completionTime"] = "2026-11-26T11:00:00Z", "2026-11-26T11:30:00Z"
	st["skippedTasks"] = []any{map[string]any{"name": "deploy", "reason": "When Expressions evaluated to false"}}
	st["retriesStatus"] = []any{map[string]any{}, map[string]any{}}
	r := RunOf(run(st))
	if r.Start.Hour() != 11 || r.End.Minute() != 30 || len(r.Skipped) != 1 || r.Skipped[0] != "deploy" || r.Retries != 2 {
		t.Errorf("RunOf = %+v", r)
	}
}
