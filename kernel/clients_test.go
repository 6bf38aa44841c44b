package kernel

import (
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// countingGetter is a kubeconfig for namespace ci that counts how often
// the REST config is read.
type countingGetter struct {
	genericclioptions.RESTClientGetter
	reads int
}

func (g *countingGetter) ToRESTConfig() (*rest.Config, error) {
	g.reads++
	return g.RESTClientGetter.ToRESTConfig()
}

func newCountingGetter() *countingGetter {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	return &countingGetter{RESTClientGetter: genericclioptions.NewTestConfigFlags().
		WithClientConfig(clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{})).WithNamespace("ci")}
}

// Each client is made once, when first asked for, from one read of the
// kubeconfig; what a command never asks for is never made.
func TestClientsAreMadeOnceAndLazily(t *testing.T) {
	g := newCountingGetter()
	c := NewClients(g)
	if ClientsOf(c) != c {
		t.Fatal("ClientsOf made other clients than the run's")
	}
	if g.reads != 0 || c.kube != nil || c.exec != nil || c.dyn != nil {
		t.Fatal("clients made before anyone asked")
	}
	k1, err := c.Kube()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := c.Kube()
	ex, err := c.Executor()
	if err != nil {
		t.Fatal(err)
	}
	if k1 != k2 || ex == nil || g.reads != 1 {
		t.Errorf("Kube() twice gave %p and %p, the kubeconfig read %d times; want one client from one read", k1, k2, g.reads)
	}
	if c.dyn != nil || c.proto != nil {
		t.Error("a client nobody asked for was made")
	}
}

// Presets stay: a test's fake is never replaced; a manage or gc command
// (a Cluster) makes no executor.
func TestCompletePresets(t *testing.T) {
	fakeClient := fake.NewClientset()
	cl := Cluster{Client: fakeClient}
	clients := NewClients(newCountingGetter())
	if err := cl.Complete(clients); err != nil {
		t.Fatal(err)
	}
	if cl.Client != fakeClient || cl.Namespace != "ci" || clients.exec != nil || clients.kube != nil {
		t.Errorf("Cluster.Complete: client %v, namespace %q, executor made %v", cl.Client, cl.Namespace, clients.exec != nil)
	}
	conn := Connection{Cluster: Cluster{Client: fakeClient}}
	if err := Connect(clients, &conn); err != nil {
		t.Fatal(err)
	}
	if conn.Client != fakeClient || conn.Executor == nil || conn.Namespace != "ci" {
		t.Errorf("Connect: %+v", conn)
	}
}
