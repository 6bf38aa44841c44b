package kernel

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// Clients are the clients of one run, made from kubectl's flags (cli's
// ConfigFlags) once, and each only when a command first asks for it: a
// command that never execs makes no executor, one that never reads Tekton
// no dynamic client. cli gives every command its Clients as the
// RESTClientGetter; Complete reads them through ClientsOf.
type Clients struct {
	genericclioptions.RESTClientGetter

	mu     sync.Mutex
	config *rest.Config
	kube   kubernetes.Interface
	proto  kubernetes.Interface
	dyn    dynamic.Interface
	exec   podexec.Executor
}

// NewClients returns the Clients over getter, none made yet.
func NewClients(getter genericclioptions.RESTClientGetter) *Clients {
	return &Clients{RESTClientGetter: getter}
}

// ClientsOf is the run's Clients when getter is they (as cli makes it),
// else Clients of getter's own (a test's).
func ClientsOf(getter genericclioptions.RESTClientGetter) *Clients {
	if c, ok := getter.(*Clients); ok {
		return c
	}
	return NewClients(getter)
}

// Namespace is the namespace of the kubeconfig or -n, and whether -n (or
// the context) named it explicitly.
func (c *Clients) Namespace() (string, bool, error) {
	return c.ToRawKubeConfigLoader().Namespace()
}

// restConfig is the kubeconfig's, read once; c.mu is held.
func (c *Clients) restConfig() (*rest.Config, error) {
	if c.config != nil {
		return c.config, nil
	}
	config, err := c.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	c.config = config
	return config, nil
}

// Kube is the typed client.
func (c *Clients) Kube() (kubernetes.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kube != nil {
		return c.kube, nil
	}
	config, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	c.kube, err = kubernetes.NewForConfig(config)
	return c.kube, err
}

// KubeProtobuf is a typed client that asks for protobuf: pages of
// thousands of pods decode several times faster from it than from JSON
// (the list views).
func (c *Clients) KubeProtobuf() (kubernetes.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proto != nil {
		return c.proto, nil
	}
	config, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	config = rest.CopyConfig(config)
	config.ContentType = runtime.ContentTypeProtobuf
	config.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	c.proto, err = kubernetes.NewForConfig(config)
	return c.proto, err
}

// Dynamic is the dynamic client (Tekton's runs, when Tekton is there).
func (c *Clients) Dynamic() (dynamic.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dyn != nil {
		return c.dyn, nil
	}
	config, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	c.dyn, err = dynamic.NewForConfig(config)
	return c.dyn, err
}

// Executor runs commands in containers (podexec's real one).
func (c *Clients) Executor() (podexec.Executor, error) {
	kube, err := c.Kube()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exec == nil {
		config, err := c.restConfig()
		if err != nil {
			return nil, err
		}
		c.exec = podexec.NewRemoteExecutor(config, kube)
	}
	return c.exec, nil
}

// Cluster is what a command that reads and changes objects needs: the
// namespace and a typed client. Tests preset them; Complete fills what is
// still empty.
type Cluster struct {
	Namespace         string
	ExplicitNamespace bool // -n (or the context) named it: some views count only there
	Client            kubernetes.Interface
}

// Complete fills the namespace when empty, and the client when nil.
func (c *Cluster) Complete(getter genericclioptions.RESTClientGetter) error {
	clients := ClientsOf(getter)
	var err error
	if c.Namespace == "" {
		if c.Namespace, c.ExplicitNamespace, err = clients.Namespace(); err != nil {
			return err
		}
	}
	if c.Client == nil {
		c.Client, err = clients.Kube()
	}
	return err
}

// Connection is what a command that execs into pods needs: a Cluster and
// the executor. Tests preset them; Connect fills what is still empty.
type Connection struct {
	Cluster
	Executor podexec.Executor
}

// Connect completes conn from the run's clients, made once: the namespace
// when empty, and the client and executor when nil.
func Connect(getter genericclioptions.RESTClientGetter, conn *Connection) error {
	if err := conn.Cluster.Complete(getter); err != nil {
		return err
	}
	if conn.Executor == nil {
		var err error
		conn.Executor, err = ClientsOf(getter).Executor()
		return err
	}
	return nil
}
