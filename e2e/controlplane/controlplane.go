// Package controlplane starts a real Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler) built from modules,
// as local processes with generated certificates and RBAC on.
package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/pki"
)

// Options says where the control plane keeps its state and finds its binaries.
type Options struct {
	Dir    string // state: pki/, etcd/, logs/, kubeconfig
	BinDir string // etcd, kube-apiserver, kube-controller-manager, kube-scheduler
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	Dir        string
	Kubeconfig string // admin (system:masters)
	Server     string // https://127.0.0.1:PORT
	CA         *pki.CA
	Config     *rest.Config
	Client     kubernetes.Interface
	// KubeletClientCA verifies the client certificate the API server presents
	// to node agents; NodeServing is issued for agents serving on 127.0.0.1.
	KubeletClientCA string
	NodeServing     pki.Pair

	procs []*process // in start order
}

// DefaultStorageClass is the name of the StorageClass that makes PVCs bind
// through kube-controller-manager's hostpath provisioner.
const DefaultStorageClass = "standard"

// Up starts etcd, the API server, the controller manager and the scheduler and
// returns once all are healthy and the default StorageClass exists. On error
// everything started so far is stopped.
func Up(ctx context.Context, o Options) (*ControlPlane, error) {
	cp := &ControlPlane{Dir: o.Dir}
	up := false
	defer func() {
		if !up {
			cp.Stop()
		}
	}()
	pkiDir, logDir := filepath.Join(o.Dir, "pki"), filepath.Join(o.Dir, "logs")
	for _, d := range []string{pkiDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	creds, err := issueCredentials(pkiDir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	cp.CA, cp.KubeletClientCA, cp.NodeServing = creds.ca, creds.ca.CertFile, creds.nodeServing

	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cp.Server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])

	etcd, err := startProcess(o.BinDir, logDir, "etcd",
		"--name=default", "--data-dir="+filepath.Join(o.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", // test data: durability costs seconds per test for nothing
		"--log-level=warn")
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, etcd)

	apiserver, err := startProcess(o.BinDir, logDir, "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		// Loopback may not be a Service endpoint; pods here reach 127.0.0.1 directly.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(o.Dir, "apiserver"),
		"--tls-cert-file="+creds.apiserver.CertFile, "--tls-private-key-file="+creds.apiserver.KeyFile,
		"--client-ca-file="+creds.ca.CertFile,
		"--authorization-mode=Node,RBAC",
		// NodeRestriction holds real kubelets to their own Node and pods;
		// PodNodeSelector and PodTolerationRestriction let a namespace's
		// annotations place its pods on one kind of node (see nodekind).
		"--enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+creds.serviceAccount.CertFile,
		"--service-account-signing-key-file="+creds.serviceAccount.KeyFile,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--kubelet-client-certificate="+creds.kubeletClient.CertFile,
		"--kubelet-client-key="+creds.kubeletClient.KeyFile,
		"--kubelet-certificate-authority="+creds.ca.CertFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--allow-privileged=true",
		"--max-requests-inflight=800", "--max-mutating-requests-inflight=400",
		"--profiling=false")
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, apiserver)

	cp.Kubeconfig = filepath.Join(o.Dir, "kubeconfig")
	if err := pki.WriteKubeconfig(cp.Kubeconfig, cp.Server, creds.ca.CertFile, creds.admin, "admin", ""); err != nil {
		return nil, err
	}
	if cp.Config, err = clientcmd.BuildConfigFromFlags("", cp.Kubeconfig); err != nil {
		return nil, err
	}
	cp.Config.QPS, cp.Config.Burst = 200, 400
	if cp.Client, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return nil, err
	}
	if err := poll(ctx, "kube-apiserver /readyz", cp.apiReady, etcd, apiserver); err != nil {
		return nil, err
	}

	auth := []string{"--kubeconfig=" + cp.Kubeconfig,
		"--authentication-kubeconfig=" + cp.Kubeconfig, "--authorization-kubeconfig=" + cp.Kubeconfig,
		"--bind-address=127.0.0.1", "--leader-elect=false"}
	kcm, err := startProcess(o.BinDir, logDir, "kube-controller-manager", append(auth,
		"--secure-port="+strconv.Itoa(ports[3]),
		"--controllers=*",
		"--service-account-private-key-file="+creds.serviceAccount.KeyFile,
		"--root-ca-file="+creds.ca.CertFile,
		"--cluster-signing-cert-file="+creds.ca.CertFile, "--cluster-signing-key-file="+filepath.Join(pkiDir, "ca.key"),
		"--use-service-account-credentials=true",
		"--enable-hostpath-provisioner",
		// Its FlexVolume prober creates this directory: by default
		// /usr/libexec/kubernetes, which would outlive the cluster.
		"--flex-volume-plugin-dir="+filepath.Join(o.Dir, "flex-volume"),
		// Synthetic nodes never post status: keep them as the tests left them
		// instead of tainting them and evicting their pods mid-run.
		"--node-monitor-grace-period=1h",
		"--concurrent-gc-syncs=20")...)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, kcm)
	scheduler, err := startProcess(o.BinDir, logDir, "kube-scheduler", append(auth,
		"--secure-port="+strconv.Itoa(ports[4]))...)
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, scheduler)

	if err := poll(ctx, "kube-controller-manager /healthz", healthz(ports[3]), kcm); err != nil {
		return nil, err
	}
	if err := poll(ctx, "kube-scheduler /healthz", healthz(ports[4]), scheduler); err != nil {
		return nil, err
	}
	if err := cp.ensureStorageClass(ctx); err != nil {
		return nil, err
	}
	// Pods can be created only once a namespace's default ServiceAccount
	// exists: seeing it proves the controllers work.
	if err := poll(ctx, "the default ServiceAccount", func(ctx context.Context) error {
		_, err := cp.Client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err
	}, kcm); err != nil {
		return nil, err
	}
	up = true
	return cp, nil
}

// Healthy reports the first component that has exited, if any.
func (cp *ControlPlane) Healthy() error {
	for _, p := range cp.procs {
		if err := p.exited(); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every component in reverse start order.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].stop(10 * time.Second)
	}
	cp.procs = nil
}

func (cp *ControlPlane) apiReady(ctx context.Context) error {
	body, err := cp.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s", err, body)
	}
	return nil
}

// hostPathBase is where kube-controller-manager's hostpath provisioner
// makes each volume's directory (its base is fixed in Kubernetes).
const hostPathBase = "/tmp/hostpath_pv/"

// ProvisionedDirs are the host directories of the volumes this cluster's
// hostpath provisioner made: nothing deletes them once the cluster is gone
// with its claims, so the cluster's stop removes them.
func (cp *ControlPlane) ProvisionedDirs(ctx context.Context) ([]string, error) {
	pvs, err := cp.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, pv := range pvs.Items {
		hp := pv.Spec.HostPath
		if hp == nil || !strings.HasPrefix(hp.Path, hostPathBase) {
			continue
		}
		if name := strings.TrimPrefix(hp.Path, hostPathBase); name != "" && !strings.ContainsAny(name, "/.") {
			dirs = append(dirs, hp.Path)
		}
	}
	return dirs, nil
}

func (cp *ControlPlane) ensureStorageClass(ctx context.Context) error {
	bind := storagev1.VolumeBindingImmediate
	reclaim := corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultStorageClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"},
		},
		Provisioner:       "kubernetes.io/host-path",
		ReclaimPolicy:     &reclaim,
		VolumeBindingMode: &bind,
	}
	_, err := cp.Client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// healthz checks a component's /healthz, which it serves to anyone on its
// secure port with a self-signed certificate.
func healthz(port int) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health probe of our own child
	}}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}
