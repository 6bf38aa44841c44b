package podexec

import (
	"context"
	"os"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/remotecommand"
)

func TestWebsocketsEnabled(t *testing.T) {
	tests := []struct {
		name, value string
		set, want   bool
	}{
		{name: "unset", want: true},
		{name: "true", value: "true", set: true, want: true},
		{name: "false", value: "false", set: true, want: false},
		{name: "0", value: "0", set: true, want: false},
		{name: "garbage keeps the default", value: "maybe", set: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", tt.value)
			if !tt.set {
				os.Unsetenv("KUBECTL_REMOTE_COMMAND_WEBSOCKETS") // t.Setenv restores it afterwards
			}
			if got := websocketsEnabled(); got != tt.want {
				t.Errorf("websocketsEnabled() with %q = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

type nopExecutor struct{}

func (nopExecutor) Exec(context.Context, Request, Streams, remotecommand.TerminalSizeQueue) error {
	return nil
}

func TestConnectionCompleteKeepsPresetClients(t *testing.T) {
	client := fake.NewClientset()
	c := Connection{Client: client, Executor: nopExecutor{}}
	if err := c.Complete(testGetter()); err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "ci" || c.Client != client || c.Executor != (nopExecutor{}) {
		t.Errorf("Complete() = %+v, want namespace ci and the preset clients", c)
	}
}

func TestConnectionCompleteBuildsClients(t *testing.T) {
	var c Connection
	if err := c.Complete(testGetter()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Executor.(*RemoteExecutor); !ok || c.Client == nil {
		t.Errorf("Complete() = %+v, want a client and a RemoteExecutor", c)
	}
}

// testGetter is a kubeconfig for a cluster nobody dials: Complete only builds clients.
func testGetter() genericclioptions.RESTClientGetter {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	return genericclioptions.NewTestConfigFlags().
		WithClientConfig(clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})).
		WithNamespace("ci")
}
