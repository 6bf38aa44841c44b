package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/images"
)

const (
	imagePullBackOff   = 10 * time.Second
	crashBackOffStart  = 10 * time.Second
	crashBackOffMax    = 5 * time.Minute
	setupRetryInterval = 2 * time.Second
)

// watchPods starts the informer over the pods bound to this node; its
// handlers start, update and stop pod runtimes.
func (a *Agent) watchPods(ctx context.Context) error {
	selector := fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
	factory := informers.NewSharedInformerFactoryWithOptions(a.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = selector }))
	podInformer := factory.Core().V1().Pods()
	a.podLister = podInformer.Lister()
	_, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podChanged(ctx, obj) },
		UpdateFunc: func(_, obj any) { a.podChanged(ctx, obj) },
		DeleteFunc: func(obj any) { a.podRemoved(obj) },
	})
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %v informer: %w", typ, ctx.Err())
		}
	}
	return nil
}

func (a *Agent) podChanged(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	p := a.pods[pod.UID]
	if p == nil {
		if pod.DeletionTimestamp != nil {
			// Being deleted and not running here (it finished, or was
			// deleted while the agent was down): only the object is left.
			a.mu.Unlock()
			go a.deletePodObject(ctx, pod)
			return
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			// Finished before this agent started: nothing to run.
			a.mu.Unlock()
			return
		}
		p = newPodRuntime(a, pod)
		a.pods[pod.UID] = p
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			p.run(ctx)
			a.mu.Lock()
			delete(a.pods, pod.UID)
			a.mu.Unlock()
		}()
	}
	a.mu.Unlock()
	p.update(pod)
}

func (a *Agent) podRemoved(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	p := a.pods[pod.UID]
	a.mu.Unlock()
	if p != nil {
		p.mu.Lock()
		p.removed = true
		p.mu.Unlock()
		p.stop(0)
	}
}

// podByName returns the runtime of the pod namespace/name, as the API server
// names it in kubelet API paths.
func (a *Agent) podByName(namespace, name string) (*podRuntime, *corev1.Pod, error) {
	pod, err := a.podLister.Pods(namespace).Get(name)
	if err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	p := a.pods[pod.UID]
	a.mu.Unlock()
	if p == nil {
		return nil, nil, fmt.Errorf("pod %s/%s is not running on this node", namespace, name)
	}
	return p, pod, nil
}

// podRuntime runs one pod. Its worker (run) sets the pod up, runs its
// containers and tears it down; informer events reach it through update
// and stop.
type podRuntime struct {
	agent  *Agent
	uid    types.UID
	dir    string
	mounts mountTable

	mu          sync.Mutex
	pod         *corev1.Pod
	state       podState
	containers  map[string]*container
	volumes     map[string]volume // set once the sandbox is ready
	execs       map[int]struct{}  // pids of running exec sessions
	cutExecs    int               // exec sessions cut by fault injection
	removed     bool              // the pod object is gone from the API
	stopping    bool
	grace       time.Duration
	stopCh      chan struct{}
	killCh      chan struct{} // closed to end the grace period early
	killOnce    sync.Once
	dirty       chan struct{}
	containerWG sync.WaitGroup

	lastMountEvent string    // the last FailedMount reported (prepare's only)
	released       sync.Once // the volumes of a finished pod were torn down
}

func newPodRuntime(a *Agent, pod *corev1.Pod) *podRuntime {
	return &podRuntime{
		agent:      a,
		uid:        pod.UID,
		dir:        filepath.Join(a.cfg.StateDir, "pods", string(pod.UID)),
		pod:        pod,
		state:      podState{statuses: map[string]corev1.ContainerStatus{}},
		containers: map[string]*container{},
		execs:      map[int]struct{}{},
		stopCh:     make(chan struct{}),
		killCh:     make(chan struct{}),
		dirty:      make(chan struct{}, 1),
	}
}

func (p *podRuntime) logf(format string, args ...any) {
	p.mu.Lock()
	name := p.pod.Namespace + "/" + p.pod.Name
	p.mu.Unlock()
	p.agent.logf("pod %s: "+format, append([]any{name}, args...)...)
}

// update records the pod's latest version: deletion starts the termination,
// new ephemeral containers are started.
func (p *podRuntime) update(pod *corev1.Pod) {
	p.mu.Lock()
	p.pod = pod
	ready := p.volumes != nil && !p.stopping
	p.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		grace := time.Duration(0)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		p.stop(grace)
		return
	}
	if ready {
		p.startEphemeralContainers(pod)
	}
}

// stop ends the pod: its processes get SIGTERM, then SIGKILL after grace. A
// second call with a shorter grace (e.g. a forced deletion) cuts it short.
func (p *podRuntime) stop(grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopping {
		p.stopping = true
		p.grace = grace
		close(p.stopCh)
	}
	if grace == 0 {
		p.killOnce.Do(func() { close(p.killCh) })
	}
}

func (p *podRuntime) notify() {
	select {
	case p.dirty <- struct{}{}:
	default:
	}
}

// setStatus records a container's status and schedules a status update.
func (p *podRuntime) setStatus(s corev1.ContainerStatus) {
	p.mu.Lock()
	p.state.statuses[s.Name] = s
	p.mu.Unlock()
	p.notify()
}

// sleep waits d unless the pod stops first; it reports whether to go on.
func (p *podRuntime) sleep(d time.Duration) bool {
	select {
	case <-p.stopCh:
		return false
	case <-time.After(d):
		return true
	}
}

// run is the pod's worker.
func (p *podRuntime) run(ctx context.Context) {
	statusDone := make(chan struct{})
	statusCtx, stopStatus := context.WithCancel(ctx)
	go func() {
		defer close(statusDone)
		p.statusLoop(statusCtx)
	}()

	now := metav1.Now()
	p.mu.Lock()
	p.state.startTime = &now
	pod := p.pod
	p.mu.Unlock()
	p.notify()

	if p.prepare(ctx, pod) {
		// Ephemeral containers added while the pod was being prepared.
		p.mu.Lock()
		latest := p.pod
		p.mu.Unlock()
		p.startEphemeralContainers(latest)
		// Init containers run one after the other in this goroutine, which
		// terminate() waits for like any container's.
		p.containerWG.Add(1)
		go func() {
			defer p.containerWG.Done()
			p.runContainers(pod)
		}()
	}
	<-p.stopCh
	p.terminate()

	if err := p.mounts.unmountAll(); err != nil {
		p.logf("teardown: %v", err)
	}
	if err := removeUnmounted(p.dir); err != nil {
		p.logf("remove pod directory: %v", err)
	}
	stopStatus()
	<-statusDone

	p.mu.Lock()
	pod, removed := p.pod, p.removed
	p.mu.Unlock()
	// A pod being deleted is removed from the API once its processes are
	// gone, with the kubelet's zero-grace, UID-guarded delete. An agent
	// shutting down leaves its pods alone.
	if pod.DeletionTimestamp != nil && !removed && ctx.Err() == nil {
		p.agent.deletePodObject(ctx, pod)
	}
}

// deletePodObject removes a terminated pod from the API with the kubelet's
// zero-grace delete, guarded by UID against a new pod of the same name.
func (a *Agent) deletePodObject(ctx context.Context, pod *corev1.Pod) {
	err := a.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		a.logf("delete pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}

// prepare resolves the images and sets up the volumes and root filesystems,
// retrying until it works or the pod stops; it reports whether it worked.
func (p *podRuntime) prepare(ctx context.Context, pod *corev1.Pod) bool {
	backoff := imagePullBackOff
	for {
		missing := p.missingImages(pod)
		if len(missing) == 0 {
			break
		}
		for _, s := range missing {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: fmt.Sprintf("image %q not found in the test cluster's image store", s.Image)}}
			p.setStatus(s)
		}
		if !p.sleep(time.Second) {
			return false
		}
		for _, s := range missing {
			s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q", s.Image)}}
			p.setStatus(s)
		}
		if !p.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, time.Minute)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		p.logf("create pod directory: %v", err)
		return false
	}
	for {
		vols, err := p.setupVolumes(ctx, pod)
		if err == nil {
			p.mu.Lock()
			p.volumes = vols
			p.state.sandboxReady = true
			p.mu.Unlock()
			p.notify()
			return true
		}
		p.logf("set up volumes: %v (retrying)", err)
		p.mountFailed(ctx, pod, err)
		if !p.sleep(setupRetryInterval) {
			return false
		}
	}
}

// missingImages returns a waiting status for each container whose image is
// not in the store.
func (p *podRuntime) missingImages(pod *corev1.Pod) []corev1.ContainerStatus {
	var missing []corev1.ContainerStatus
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if _, err := images.Lookup(p.agent.cfg.ImagesDir, c.Image); errors.Is(err, images.ErrNotFound) {
			missing = append(missing, corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptrBool(false)})
		}
	}
	return missing
}

// newContainer builds a container's root filesystem, mounts its volumes and
// resolves its command and environment.
func (p *podRuntime) newContainer(pod *corev1.Pod, spec corev1.Container, kind containerKind) (*container, error) {
	img, err := images.Lookup(p.agent.cfg.ImagesDir, spec.Image)
	if err != nil {
		return nil, err
	}
	cdir := filepath.Join(p.dir, "containers", spec.Name)
	rootfs := filepath.Join(cdir, "rootfs")
	if err := makeRootfs(img.Rootfs, rootfs, pod); err != nil {
		return nil, err
	}
	if err := p.mounts.mountProc(filepath.Join(rootfs, "proc")); err != nil {
		return nil, err
	}
	// Terminal tools (stty, tty) look their terminal up in /dev/pts.
	if err := p.mounts.bind("/dev/pts", filepath.Join(rootfs, "dev", "pts"), false); err != nil {
		return nil, err
	}
	p.mu.Lock()
	vols := p.volumes
	p.mu.Unlock()
	if err := mountVolumes(&p.mounts, rootfs, vols, spec.VolumeMounts); err != nil {
		return nil, err
	}
	env, err := containerEnv(context.Background(), newObjectSource(p.agent.cfg.Client, pod.Namespace), pod, &spec, img.Config)
	if err != nil {
		return nil, err
	}
	uid, gid := runAs(pod, &spec, img.Config)
	c := &container{
		name:   spec.Name,
		kind:   kind,
		spec:   spec,
		image:  img,
		proc:   procSpec{rootfs: rootfs, env: env, dir: workingDir(&spec, img.Config), uid: uid, gid: gid},
		argv:   containerCommand(&spec, img.Config, env),
		logDir: filepath.Join(cdir, "logs"),
		status: corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, ImageID: "local://" + img.Name + "@" + img.ID, Started: ptrBool(false)},
	}
	p.mu.Lock()
	p.containers[spec.Name] = c
	p.mu.Unlock()
	return c, nil
}

// createOrFail creates a container; a failure is reported in its status and
// retried, as the kubelet retries CreateContainerError.
func (p *podRuntime) createOrFail(pod *corev1.Pod, spec corev1.Container, kind containerKind) *container {
	for attempt := 0; ; attempt++ {
		c, err := p.newContainer(pod, spec, kind)
		if err == nil {
			return c
		}
		reason := "CreateContainerError"
		switch {
		case errors.Is(err, images.ErrNotFound) && attempt == 0:
			// Only ephemeral containers get here: the others' images were
			// checked by prepare.
			reason = "ErrImagePull"
		case errors.Is(err, images.ErrNotFound):
			reason = "ImagePullBackOff"
		default:
			p.logf("create container %s: %v", spec.Name, err)
		}
		p.setStatus(corev1.ContainerStatus{
			Name: spec.Name, Image: spec.Image, Started: ptrBool(false),
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: err.Error()}},
		})
		if !p.sleep(setupRetryInterval) {
			return nil
		}
	}
}

// runContainers runs the init containers in order, then the containers.
func (p *podRuntime) runContainers(pod *corev1.Pod) {
	for _, spec := range pod.Spec.InitContainers {
		c := p.createOrFail(pod, spec, kindInit)
		if c == nil {
			return
		}
		if isSidecar(&spec) {
			p.containerWG.Add(1)
			go func() {
				defer p.containerWG.Done()
				p.runLoop(c, corev1.RestartPolicyAlways)
			}()
			continue
		}
		policy := pod.Spec.RestartPolicy
		if policy == corev1.RestartPolicyAlways {
			// An init container is restarted only until it succeeds.
			policy = corev1.RestartPolicyOnFailure
		}
		if !p.runLoop(c, policy) {
			return
		}
	}
	for _, spec := range pod.Spec.Containers {
		c := p.createOrFail(pod, spec, kindRegular)
		if c == nil {
			return
		}
		p.containerWG.Add(1)
		go func() {
			defer p.containerWG.Done()
			p.runLoop(c, pod.Spec.RestartPolicy)
		}()
	}
}

func (p *podRuntime) startEphemeralContainers(pod *corev1.Pod) {
	for _, ec := range pod.Spec.EphemeralContainers {
		p.mu.Lock()
		_, known := p.containers[ec.Name]
		stopping := p.stopping
		if !known && !stopping {
			// Reserve the name so that a second update does not start it
			// again; count it before terminate() can start waiting.
			p.containers[ec.Name] = &container{name: ec.Name, kind: kindEphemeral}
			p.containerWG.Add(1)
		}
		p.mu.Unlock()
		if known || stopping {
			continue
		}
		spec := corev1.Container(ec.EphemeralContainerCommon)
		go func() {
			defer p.containerWG.Done()
			if c := p.createOrFail(pod, spec, kindEphemeral); c != nil {
				p.runLoop(c, corev1.RestartPolicyNever)
			}
		}()
	}
}

// runLoop runs a container until it ends for good under policy or the pod
// stops; it reports whether its last run succeeded.
func (p *podRuntime) runLoop(c *container, policy corev1.RestartPolicy) bool {
	backoff := crashBackOffStart
	for {
		select {
		case <-p.stopCh:
			return false
		default:
		}
		code := p.runOnce(c)
		restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && code != 0)
		if !restart {
			return code == 0
		}
		p.mu.Lock()
		s := c.status
		if s.State.Terminated != nil {
			s.LastTerminationState = s.State
		}
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", backoff, c.name, p.pod.Name, p.pod.Namespace, p.uid),
		}}
		c.status = s
		p.mu.Unlock()
		p.setStatus(s)
		if !p.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, crashBackOffMax)
		p.mu.Lock()
		c.status.RestartCount++
		p.mu.Unlock()
	}
}

// runOnce starts the container's process, records it running, waits for its
// end and records it terminated; it returns the exit code.
func (p *podRuntime) runOnce(c *container) int {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return 0
	}
	p.mu.Unlock()
	started := metav1.Now()
	run, ap, wait, err := c.start()
	if err != nil {
		p.mu.Lock()
		c.status = terminatedStatus(c.status, 128, "StartError", err.Error(), started, metav1.Now(), c.kind)
		s := c.status
		p.mu.Unlock()
		p.setStatus(s)
		return 128
	}
	p.mu.Lock()
	c.run, c.attach = run, ap
	c.status = runningStatus(c.status, started)
	s := c.status
	stopping := p.stopping
	p.mu.Unlock()
	p.setStatus(s)
	if stopping {
		// The pod stopped while this process started: terminate() may have
		// signalled before it existed.
		signalGroup(run.pid, syscall.SIGKILL)
	}
	code := wait()
	p.mu.Lock()
	c.status = terminatedStatus(c.status, code, "", "", started, metav1.Now(), c.kind)
	s = c.status
	p.mu.Unlock()
	p.setStatus(s)
	return code
}

// terminate stops every process of the pod: SIGTERM to the process groups
// of its containers and exec sessions, SIGKILL after the grace period.
func (p *podRuntime) terminate() {
	signalAll := func(sig syscall.Signal) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.containers {
			if c.run != nil {
				select {
				case <-c.run.done:
				default:
					signalGroup(c.run.pid, sig)
				}
			}
		}
		for pid := range p.execs {
			signalGroup(pid, sig)
		}
	}
	allDone := make(chan struct{})
	go func() {
		p.containerWG.Wait()
		close(allDone)
	}()
	signalAll(syscall.SIGTERM)
	p.mu.Lock()
	grace := p.grace
	p.mu.Unlock()
	select {
	case <-allDone:
	case <-time.After(grace):
	case <-p.killCh:
	}
	signalAll(syscall.SIGKILL)
	// Exec sessions end with their processes; keep killing until the
	// container loops have noticed.
	for {
		select {
		case <-allDone:
			signalAll(syscall.SIGKILL)
			return
		case <-time.After(200 * time.Millisecond):
			signalAll(syscall.SIGKILL)
		}
	}
}

// statusLoop writes the pod's status whenever it changes, until ctx ends;
// it then writes the last one.
func (p *podRuntime) statusLoop(ctx context.Context) {
	var last *corev1.PodStatus
	for {
		select {
		case <-p.dirty:
		case <-ctx.Done():
			return
		}
		// Let a burst of changes settle into one update.
		time.Sleep(50 * time.Millisecond)
		select {
		case <-p.dirty:
		default:
		}
		p.mu.Lock()
		pod := p.pod.DeepCopy()
		removed := p.removed
		p.mu.Unlock()
		if removed {
			return
		}
		state := p.snapshot()
		status := computePodStatus(pod, state, metav1.Now())
		if last != nil && apiequality.Semantic.DeepEqual(*last, status) {
			continue
		}
		if err := p.writeStatus(ctx, pod); err != nil {
			if ctx.Err() == nil && !apierrors.IsNotFound(err) {
				p.logf("update status: %v", err)
				// Try again at the next change or shortly.
				go func() { time.Sleep(time.Second); p.notify() }()
			}
			continue
		}
		last = &status
		if status.Phase == corev1.PodSucceeded || status.Phase == corev1.PodFailed {
			p.released.Do(func() { p.releaseVolumes(pod) })
		}
	}
}

func (p *podRuntime) writeStatus(ctx context.Context, pod *corev1.Pod) error {
	pods := p.agent.cfg.Client.CoreV1().Pods(pod.Namespace)
	for attempt := 0; ; attempt++ {
		// Conditions owned by others are merged from the version being
		// updated; recompute against it.
		pod.Status = computePodStatus(pod, p.snapshot(), metav1.Now())
		_, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) || attempt == 5 {
			return err
		}
		fresh, gerr := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		if fresh.UID != p.uid {
			return nil
		}
		pod = fresh
	}
}

func (p *podRuntime) snapshot() podState {
	p.mu.Lock()
	defer p.mu.Unlock()
	state := p.state
	state.statuses = make(map[string]corev1.ContainerStatus, len(p.state.statuses))
	for k, v := range p.state.statuses {
		state.statuses[k] = v
	}
	return state
}
