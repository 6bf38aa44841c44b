// Package nodekind names the two kinds of test cluster nodes that run pods:
// our node agent and a real kubelet. Every such Node carries Label with its
// kind; real nodes are also tainted with Label, so that a pod lands there
// only when it asks to (a nodeSelector and a toleration), and tests written
// for the agent keep running there.
package nodekind

// Kind is a value of Label.
type Kind string

const (
	// Label is the Node label (and, on real nodes, the taint key) that
	// holds the kind.
	Label = "testcluster.kubectl-concourse.dev/node-kind"

	// Agent is a node run by package nodeagent: processes chrooted on the
	// host, fault injection, fast.
	Agent Kind = "agent"
	// Kubelet is a real node (package realnode): the kubelet, containerd,
	// runc, the reference behaviour.
	Kubelet Kind = "kubelet"
)

// Taint is the taint of real nodes, as key=value:effect.
const Taint = Label + "=" + string(Kubelet) + ":NoSchedule"
