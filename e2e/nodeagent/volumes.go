package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// volume is a pod volume ready to be bind-mounted into its containers.
type volume struct {
	path string
	// readOnly forces every mount read-only: Secret, ConfigMap, projected
	// and downward API volumes are never writable, as on a kubelet.
	readOnly bool
	// owned: the agent made the directory (emptyDirs, content volumes),
	// and removes it when the pod's volumes are torn down; a claim's or a
	// host path's data stays.
	owned bool
}

// pluginDirs are the kubelet's directory names of the volume plugins whose
// volumes live in the pod's directory: <root>/pods/<uid>/volumes/<plugin>/<name>.
func pluginDir(v *corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "kubernetes.io~empty-dir"
	case v.Secret != nil:
		return "kubernetes.io~secret"
	case v.ConfigMap != nil:
		return "kubernetes.io~configmap"
	case v.Projected != nil:
		return "kubernetes.io~projected"
	case v.DownwardAPI != nil:
		return "kubernetes.io~downward-api"
	}
	return ""
}

// volumeError is the failure to set up one volume, which the kubelet
// reports in a FailedMount event.
type volumeError struct {
	name string
	err  error
}

func (e *volumeError) Error() string { return fmt.Sprintf("volume %q: %v", e.name, e.err) }
func (e *volumeError) Unwrap() error { return e.err }

// setupVolumes prepares every volume of the pod, in the kubelet's layout of
// the pod directory (the state directory is the agent's kubelet root):
// emptyDirs and content volumes (written as files) under
// volumes/<plugin>/<name>, PVCs through their bound PV, host paths as they
// are.
func (p *podRuntime) setupVolumes(ctx context.Context, pod *corev1.Pod) (map[string]volume, error) {
	vols := map[string]volume{}
	src := newObjectSource(p.agent.cfg.Client, pod.Namespace)
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		dir := filepath.Join(p.dir, "volumes", pluginDir(v), v.Name)
		var err error
		var vol volume
		switch {
		case v.EmptyDir != nil:
			vol = volume{path: dir, owned: true}
			err = os.MkdirAll(dir, 0o777)
			if err == nil {
				// Any user of the pod may write an emptyDir, as on a kubelet.
				err = os.Chmod(dir, 0o777)
			}
		case v.HostPath != nil:
			vol.path, err = hostPathVolume(v.HostPath)
		case v.PersistentVolumeClaim != nil:
			vol.path, err = p.claimPath(ctx, pod.Namespace, v.PersistentVolumeClaim.ClaimName)
			vol.readOnly = v.PersistentVolumeClaim.ReadOnly
		case v.Secret != nil, v.ConfigMap != nil, v.Projected != nil, v.DownwardAPI != nil:
			vol = volume{path: dir, readOnly: true, owned: true}
			var files []volumeFile
			files, err = p.volumeFiles(ctx, src, pod, v)
			if err == nil {
				err = writeVolumeFiles(dir, files)
			}
		default:
			err = errors.New("unsupported volume type")
		}
		if err != nil {
			return nil, &volumeError{name: v.Name, err: err}
		}
		vols[v.Name] = vol
	}
	return vols, nil
}

// hostPathVolume checks a host path as the kubelet's hostPath plugin does,
// with its messages: the ...OrCreate types create what is missing, the
// others must find what they name.
func hostPathVolume(hp *corev1.HostPathVolumeSource) (string, error) {
	typ := corev1.HostPathUnset
	if hp.Type != nil {
		typ = *hp.Type
	}
	fi, statErr := os.Stat(hp.Path)
	is := func(ok bool, what string) (string, error) {
		if statErr != nil || !ok {
			return "", fmt.Errorf("hostPath type check failed: %s is not a %s", hp.Path, what)
		}
		return hp.Path, nil
	}
	switch typ {
	case corev1.HostPathDirectoryOrCreate:
		return hp.Path, os.MkdirAll(hp.Path, 0o755)
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
			return "", err
		}
		f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return "", err
		}
		return hp.Path, f.Close()
	case corev1.HostPathDirectory:
		return is(statErr == nil && fi.IsDir(), "directory")
	case corev1.HostPathFile:
		return is(statErr == nil && fi.Mode().IsRegular(), "file")
	case corev1.HostPathSocket:
		return is(statErr == nil && fi.Mode()&os.ModeSocket != 0, "socket")
	case corev1.HostPathCharDev:
		return is(statErr == nil && fi.Mode()&os.ModeCharDevice != 0, "character device")
	case corev1.HostPathBlockDev:
		return is(statErr == nil && fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0, "block device")
	}
	if statErr != nil {
		return "", fmt.Errorf("host path: %w", statErr)
	}
	return hp.Path, nil
}

// claimPath finds where a bound claim's data lives: the host path (or local
// path) of its PersistentVolume, created by kube-controller-manager's
// hostpath provisioner under /tmp/hostpath_pv.
func (p *podRuntime) claimPath(ctx context.Context, namespace, claim string) (string, error) {
	client := p.agent.cfg.Client
	pvc, err := client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get claim: %w", err)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("claim %s is not bound yet", claim)
	}
	pv, err := client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get volume of claim %s: %w", claim, err)
	}
	var path string
	switch {
	case pv.Spec.HostPath != nil:
		path = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		path = pv.Spec.Local.Path
	default:
		return "", fmt.Errorf("volume %s of claim %s is neither hostPath nor local", pv.Name, claim)
	}
	return path, os.MkdirAll(path, 0o777)
}

// volumeFile is one file of a content volume.
type volumeFile struct {
	path string // relative to the volume
	data []byte
	mode os.FileMode
}

func fileMode(itemMode, defaultMode *int32) os.FileMode {
	switch {
	case itemMode != nil:
		return os.FileMode(*itemMode)
	case defaultMode != nil:
		return os.FileMode(*defaultMode)
	}
	return 0o644
}

// keyFiles selects the files of a Secret or ConfigMap: all keys, or the
// listed items at their paths.
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional bool, what string) ([]volumeFile, error) {
	if data == nil {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%s not found", what)
	}
	var files []volumeFile
	if len(items) == 0 {
		for _, k := range sortedKeys(data) {
			files = append(files, volumeFile{path: k, data: data[k], mode: fileMode(nil, defaultMode)})
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("key %q of %s not found", it.Key, what)
		}
		files = append(files, volumeFile{path: it.Path, data: v, mode: fileMode(it.Mode, defaultMode)})
	}
	return files, nil
}

func secretData(s *corev1.Secret) map[string][]byte {
	if s == nil {
		return nil
	}
	if s.Data == nil {
		return map[string][]byte{}
	}
	return s.Data
}

func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	if cm == nil {
		return nil
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data
}

// volumeFiles computes the files of a Secret, ConfigMap, projected or
// downward API volume.
func (p *podRuntime) volumeFiles(ctx context.Context, src *objectSource, pod *corev1.Pod, v *corev1.Volume) ([]volumeFile, error) {
	switch {
	case v.Secret != nil:
		s, err := src.secret(ctx, v.Secret.SecretName)
		if err != nil {
			return nil, err
		}
		return keyFiles(secretData(s), v.Secret.Items, v.Secret.DefaultMode, optional(v.Secret.Optional), "secret "+v.Secret.SecretName)
	case v.ConfigMap != nil:
		cm, err := src.configMap(ctx, v.ConfigMap.Name)
		if err != nil {
			return nil, err
		}
		return keyFiles(configMapData(cm), v.ConfigMap.Items, v.ConfigMap.DefaultMode, optional(v.ConfigMap.Optional), "configmap "+v.ConfigMap.Name)
	case v.DownwardAPI != nil:
		return downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode)
	}
	var files []volumeFile
	defaultMode := v.Projected.DefaultMode
	for _, s := range v.Projected.Sources {
		var more []volumeFile
		var err error
		switch {
		case s.Secret != nil:
			var sec *corev1.Secret
			if sec, err = src.secret(ctx, s.Secret.Name); err == nil {
				more, err = keyFiles(secretData(sec), s.Secret.Items, defaultMode, optional(s.Secret.Optional), "secret "+s.Secret.Name)
			}
		case s.ConfigMap != nil:
			var cm *corev1.ConfigMap
			if cm, err = src.configMap(ctx, s.ConfigMap.Name); err == nil {
				more, err = keyFiles(configMapData(cm), s.ConfigMap.Items, defaultMode, optional(s.ConfigMap.Optional), "configmap "+s.ConfigMap.Name)
			}
		case s.DownwardAPI != nil:
			more, err = downwardFiles(pod, s.DownwardAPI.Items, defaultMode)
		case s.ServiceAccountToken != nil:
			var token string
			token, err = p.serviceAccountToken(ctx, pod, s.ServiceAccountToken)
			more = []volumeFile{{path: s.ServiceAccountToken.Path, data: []byte(token), mode: fileMode(nil, defaultMode)}}
		default:
			err = errors.New("unsupported projected source")
		}
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) ([]volumeFile, error) {
	var files []volumeFile
	for _, it := range items {
		if it.FieldRef == nil {
			// resourceFieldRef: no resource accounting here.
			files = append(files, volumeFile{path: it.Path, data: []byte("0"), mode: fileMode(it.Mode, defaultMode)})
			continue
		}
		v, err := podFieldValue(pod, it.FieldRef.FieldPath)
		if err != nil {
			return nil, err
		}
		files = append(files, volumeFile{path: it.Path, data: []byte(v), mode: fileMode(it.Mode, defaultMode)})
	}
	return files, nil
}

// serviceAccountToken asks the API server for a token bound to the pod, as
// the kubelet does for projected token volumes.
func (p *podRuntime) serviceAccountToken(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if req.Spec.ExpirationSeconds == nil {
		req.Spec.ExpirationSeconds = ptr.To(int64(3607))
	}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := p.agent.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s: %w", sa, err)
	}
	return tr.Status.Token, nil
}

// writeVolumeFiles writes files under dir; their paths come from the API
// and must stay inside it.
func writeVolumeFiles(dir string, files []volumeFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if f.path == "" || filepath.IsAbs(f.path) || strings.Contains(f.path, "..") {
			return fmt.Errorf("invalid volume file path %q", f.path)
		}
		p, err := securejoin.SecureJoin(dir, f.path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode.Perm()); err != nil {
			return err
		}
	}
	return nil
}

// mountVolumes bind-mounts a container's volumeMounts into its rootfs.
func mountVolumes(mounts *mountTable, rootfs string, vols map[string]volume, volumeMounts []corev1.VolumeMount) error {
	for _, vm := range volumeMounts {
		vol, ok := vols[vm.Name]
		if !ok {
			return fmt.Errorf("volume mount %q: no such volume", vm.Name)
		}
		source := vol.path
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || strings.Contains(vm.SubPath, "..") {
				return fmt.Errorf("volume mount %q: invalid subPath %q", vm.Name, vm.SubPath)
			}
			var err error
			if source, err = securejoin.SecureJoin(vol.path, vm.SubPath); err != nil {
				return err
			}
			if _, err := os.Stat(source); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(source, 0o777); err != nil {
					return fmt.Errorf("volume mount %q: create subPath: %w", vm.Name, err)
				}
			}
		}
		target, err := securejoin.SecureJoin(rootfs, vm.MountPath)
		if err != nil {
			return fmt.Errorf("volume mount %q: %w", vm.Name, err)
		}
		if err := mounts.bind(source, target, vm.ReadOnly || vol.readOnly); err != nil {
			return fmt.Errorf("volume mount %q: %w", vm.Name, err)
		}
	}
	return nil
}

// AnnotationKeepTerminatedPodVolumes ("true") keeps a finished pod's volumes
// mounted and its emptyDirs' data on disk until the pod is deleted, as the
// kubelet's --keep-terminated-pod-volumes did before it was removed: tests
// use it to stand for the moments before a kubelet's teardown.
const AnnotationKeepTerminatedPodVolumes = "testcluster.kubectl-concourse.dev/keep-terminated-pod-volumes"

// releaseVolumes does what a kubelet does once a pod has finished
// (SyncTerminatedPod): it unmounts the pod's volumes and removes the
// directories it made for them, an emptyDir's data included. A claim's and
// a host path's data stay, and so do the pod's directory and its logs until
// the pod is deleted.
func (p *podRuntime) releaseVolumes(pod *corev1.Pod) {
	if pod.Annotations[AnnotationKeepTerminatedPodVolumes] == "true" {
		return
	}
	if err := p.mounts.unmountAll(); err != nil {
		p.logf("tear down volumes: %v", err)
	}
	p.mu.Lock()
	vols := p.volumes
	p.mu.Unlock()
	for name, vol := range vols {
		if !vol.owned {
			continue
		}
		if err := removeUnmounted(vol.path); err != nil {
			p.logf("remove volume %s: %v", name, err)
		}
	}
}

// mountFailed reports a volume that cannot be set up as the kubelet does,
// in a FailedMount warning event on the pod (once for each new message).
func (p *podRuntime) mountFailed(ctx context.Context, pod *corev1.Pod, err error) {
	msg := err.Error()
	var ve *volumeError
	if errors.As(err, &ve) {
		msg = fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", ve.name, ve.err)
	}
	if msg == p.lastMountEvent {
		return
	}
	p.lastMountEvent = msg
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject:      corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Reason:              "FailedMount",
		Message:             msg,
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: "kubelet", Host: p.agent.cfg.NodeName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kubelet",
		ReportingInstance:   p.agent.cfg.NodeName,
	}
	if _, err := p.agent.cfg.Client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		p.logf("report FailedMount: %v", err)
	}
}
