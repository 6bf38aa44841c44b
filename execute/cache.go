package execute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-concourse/kubectl-concourse/cmderr"
	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// An input's warm cache is a PersistentVolumeClaim in the build's
// namespace, the plugin's own (docs/caches.md): one per input name and
// local user, in cacheSlots slots so that concurrent executes of one input
// never share one. The inputs container mounts it, and the agent brings its
// tree to the local one; the task then uses that tree in place as its
// input, so a lease lasts as long as the build's pod may use it.
const (
	// cacheSlots bounds the claims of one input and user: an execute that
	// finds them all leased uploads in full.
	cacheSlots = 4
	// cacheMountRoot is where the inputs container mounts the caches,
	// each at its input's index.
	cacheMountRoot = "/.kubectl-concourse-cache"
	// minCacheSize is the least a claim asks for; twice the input when
	// that is more.
	minCacheSize = 1 << 30
)

// cacheMount is where the inputs container mounts input i's cache.
func cacheMount(i int) string { return path.Join(cacheMountRoot, strconv.Itoa(i)) }

// cacheVolume names the pod's volume of input i's cache (a task's own
// caches are "cache-N").
func cacheVolume(i int) string { return "input-cache-" + strconv.Itoa(i) }

// cacheUser is who a cache belongs to: the local login and host, so that a
// cache follows the tree it was sent from.
func cacheUser() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// cacheClaimName names slot of the cache of input for user.
func cacheClaimName(input, user string, slot int) string {
	sum := sha256.Sum256([]byte(input + "\x00" + user))
	return fmt.Sprintf("kubectl-concourse-cache-%s-%d", hex.EncodeToString(sum[:5]), slot)
}

// cacheLeaser takes and gives back the caches of one run.
type cacheLeaser struct {
	client  kubernetes.Interface
	ns      string
	user    string
	holder  string        // leaseHolder: the build's ID and random digits
	pod     string        // the build's pod, which uses the leased trees
	holdFor time.Duration // a lease whose pod is not there ends after this
	now     func() time.Time
}

// leaseHolder names this run in a lease: its build ID, and random digits,
// since two runs started in the same millisecond have the same build ID.
func leaseHolder(buildID string) string {
	var r [4]byte
	rand.Read(r[:])
	return buildID + "." + hex.EncodeToString(r[:])
}

// errNoClaims is a cluster that gives this user no claim: said once for
// every input.
type errNoClaims struct{ why string }

func (e errNoClaims) Error() string { return e.why }

// lease takes a free slot of input's cache, making its claim when it has
// none, and returns the claim; nil when every slot is leased.
func (l *cacheLeaser) lease(ctx context.Context, input string, size func() int64) (*corev1.PersistentVolumeClaim, error) {
	pvcs := l.client.CoreV1().PersistentVolumeClaims(l.ns)
	for slot := range cacheSlots {
		name := cacheClaimName(input, l.user, slot)
		for try := 0; try < 3; try++ {
			claim, err := pvcs.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				claim, err = l.create(ctx, name, input, size)
				if apierrors.IsAlreadyExists(err) {
					continue // another run made it first: read it again
				}
				return claim, err
			}
			if err != nil {
				return nil, l.refused(err, "get")
			}
			if claim.DeletionTimestamp != nil || l.held(ctx, claim) {
				break // the next slot
			}
			l.stamp(claim)
			updated, err := pvcs.Update(ctx, claim, metav1.UpdateOptions{})
			if err == nil {
				return updated, nil
			}
			if !apierrors.IsConflict(err) {
				return nil, l.refused(err, "update")
			}
		}
	}
	return nil, nil
}

// held says whether another run's lease on claim is still on. Its task
// uses the tree in place: while the lease's pod is there, the lease holds
// until the task has ended, whatever its expiry (an execute -b has
// returned while its task runs on); a pod that is not there (not made yet,
// or gone with a plugin that was killed) holds it until the expiry. A pod
// that cannot be read holds it.
func (l *cacheLeaser) held(ctx context.Context, claim *corev1.PersistentVolumeClaim) bool {
	lease, ok := selector.LeaseOf(claim.Annotations)
	if !ok {
		return false
	}
	if lease.Pod != "" {
		pod, err := l.client.CoreV1().Pods(l.ns).Get(ctx, lease.Pod, metav1.GetOptions{})
		switch {
		case err == nil:
			return !taskEnded(pod)
		case !apierrors.IsNotFound(err):
			return true
		}
	}
	return l.now().Before(lease.Expiry)
}

// taskEnded says whether pod's task can no longer touch its inputs.
func taskEnded(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return true
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == taskContainer && c.State.Terminated != nil {
			return true
		}
	}
	return false
}

// stamp writes this run's lease and the time of use on claim.
func (l *cacheLeaser) stamp(claim *corev1.PersistentVolumeClaim) {
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	now := l.now()
	claim.Annotations[selector.AnnotationLease] = selector.Lease{Holder: l.holder, Expiry: now.Add(l.holdFor), Pod: l.pod}.String()
	claim.Annotations[selector.AnnotationLastUsed] = now.UTC().Format(time.RFC3339)
}

// create makes a claim of the default StorageClass, leased to this run. A
// cluster with no default class leaves it without one: it is deleted and
// said, since it would never bind.
func (l *cacheLeaser) create(ctx context.Context, name, input string, size func() int64) (*corev1.PersistentVolumeClaim, error) {
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: l.ns,
			Labels:      map[string]string{selector.LabelManagedBy: selector.ManagedByPlugin, selector.LabelVolumeType: selector.VolumeTypeInputCache},
			Annotations: map[string]string{selector.AnnotationCacheOf: input, selector.AnnotationCacheUser: l.user}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(max(2*size(), minCacheSize), resource.BinarySI)}},
		},
	}
	l.stamp(claim)
	created, err := l.client.CoreV1().PersistentVolumeClaims(l.ns).Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		return nil, l.refused(err, "create")
	}
	if created.Spec.StorageClassName == nil {
		l.remove(ctx, name)
		return nil, errNoClaims{"the cluster has no default StorageClass"}
	}
	return created, nil
}

// refused turns RBAC's refusal into errNoClaims, which is said in one line.
func (l *cacheLeaser) refused(err error, verb string) error {
	if apierrors.IsForbidden(err) {
		return errNoClaims{fmt.Sprintf("you may not %s persistentvolumeclaims in namespace %s", verb, l.ns)}
	}
	return err
}

// release ends this run's lease on each claim, if it still holds it.
func (l *cacheLeaser) release(ctx context.Context, names []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for _, name := range names {
		if err := l.releaseOne(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("release the warm caches (their leases end by themselves): %w", err)
	}
	return nil
}

// releaseOne ends the lease on one claim. The update carries the
// resourceVersion read: a lease another run took after this one's expired
// is not this run's to end, and a claim that changed meanwhile (its
// binding, another run's look) is read again.
func (l *cacheLeaser) releaseOne(ctx context.Context, name string) error {
	pvcs := l.client.CoreV1().PersistentVolumeClaims(l.ns)
	for {
		claim, err := pvcs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lease, _ := selector.LeaseOf(claim.Annotations); lease.Holder != l.holder {
			return nil
		}
		delete(claim.Annotations, selector.AnnotationLease)
		_, err = pvcs.Update(ctx, claim, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) {
			return err
		}
	}
}

func (l *cacheLeaser) remove(ctx context.Context, name string) {
	_ = l.client.CoreV1().PersistentVolumeClaims(l.ns).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
}

// leaseCaches gives each input of b a leased cache claim, as far as the
// cluster allows, and returns the claims to release. Where it gives none,
// it says so in one line and the inputs are uploaded in full.
func (o *ExecuteOptions) leaseCaches(ctx context.Context, b *oneOff, l *cacheLeaser) []string {
	if uid, ok := runAsUser(b.Config.Run.User); ok && uid != 0 {
		// The inputs container writes as the task's user (the inputs are
		// theirs, as in Concourse), and a claim's root is the
		// provisioner's, often root's and 0755: a cache could neither be
		// written nor shared with a run as another user.
		fmt.Fprintf(o.ErrOut, "warning: no warm input cache: the task runs as user %d (run.user), and a cache's files are root's; uploading the inputs in full\n", uid)
		return nil
	}
	var leased []string
	for i := range b.Inputs {
		in := &b.Inputs[i]
		if b.sharesPath(in.Name) {
			continue // uploaded into the emptyDir it shares
		}
		claim, err := l.lease(ctx, in.Name, func() int64 { return treeSize(in.Local) })
		var none errNoClaims
		switch {
		case errors.As(err, &none):
			fmt.Fprintf(o.ErrOut, "warning: no warm input cache: %s; uploading the inputs in full\n", printers.EscapeTerminal(none.why))
			return leased
		case err != nil:
			fmt.Fprintf(o.ErrOut, "warning: no warm cache for input %s: %v; uploading it in full\n",
				printers.EscapeTerminal(in.Name), cmderr.ExplainForbidden(err, b.Namespace, "update", "persistentvolumeclaims"))
			continue
		case claim == nil:
			fmt.Fprintf(o.ErrOut, "warning: all %d warm caches of input %s are in use; uploading it in full\n", cacheSlots, printers.EscapeTerminal(in.Name))
			continue
		}
		if node, ok := o.excludedNode(ctx, *b, claim); ok {
			if err := l.release(ctx, []string{claim.Name}); err != nil {
				fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
			}
			fmt.Fprintf(o.ErrOut, "warning: the warm cache of input %s is bound to node %s, where this build may not run; uploading it in full\n",
				printers.EscapeTerminal(in.Name), printers.EscapeTerminal(node))
			continue
		}
		in.Cache = claim.Name
		leased = append(leased, claim.Name)
	}
	return leased
}

// sharesPath says whether input name is at the path of an output or of a
// task's cache: they share one emptyDir (as in Concourse), and a warm
// cache's tree cannot be that.
func (b oneOff) sharesPath(name string) bool {
	var p string
	for _, in := range b.Config.Inputs {
		if in.Name == name {
			p = artifactPath(workingDir, in.Name, in.Path)
		}
	}
	for _, out := range b.Config.Outputs {
		if artifactPath(workingDir, out.Name, out.Path) == p {
			return true
		}
	}
	for _, c := range b.Config.Caches {
		if artifactPath(workingDir, "", c.Path) == p {
			return true
		}
	}
	return false
}

// annotationSelectedNode is where the scheduler records the node a claim
// of a WaitForFirstConsumer class was bound for.
const annotationSelectedNode = "volume.kubernetes.io/selected-node"

// excludedNode names the node claim is bound to when the build may not run
// there (its platform, tags or team: placement), or when that node is gone:
// a pod with the claim would never be scheduled. A node the user may not
// read is left to the scheduler.
func (o *ExecuteOptions) excludedNode(ctx context.Context, b oneOff, claim *corev1.PersistentVolumeClaim) (string, bool) {
	name := claim.Annotations[annotationSelectedNode]
	if name == "" {
		return "", false
	}
	node, err := o.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return name, true
	case err != nil:
		return "", false
	}
	return name, !b.fits(*node)
}

// treeSize is the bytes of the regular files under dir, for the claim's
// request; 0 when it cannot be read (the upload says why).
func treeSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
