package views

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// newTektonClient is a dynamic client that serves Tekton's runs, holding objs.
func newTektonClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		taskRunsResource: "TaskRunList", pipelineRunsResource: "PipelineRunList",
	}, objs...)
}
