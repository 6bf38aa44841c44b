// Package selector holds the label contract between Concourse's Kubernetes
// runtime and this plugin (docs/labels.md), and turns fly's build/step flags
// into label selectors, pods and containers.
package selector

// Label and annotation keys of the contract. A value that is not a valid
// label value is encoded (see Encode) and kept whole in the annotation with
// the same key.
const (
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	ManagedByValue    = "concourse"
	LabelTeam         = "concourse-ci.org/team"
	LabelPipeline     = "concourse-ci.org/pipeline"
	LabelJob          = "concourse-ci.org/job"
	LabelBuildName    = "concourse-ci.org/build-name"
	LabelBuildID      = "concourse-ci.org/build-id"
	LabelStepName     = "concourse-ci.org/step-name"
	LabelStepType     = "concourse-ci.org/step-type"
	LabelAttempt      = "concourse-ci.org/attempt"
	LabelResource     = "concourse-ci.org/resource"
	LabelHandle       = "concourse-ci.org/handle"
	LabelLegacyHandle = "org.concourse-ci.handle"

	AnnotationInstanceVars = "concourse-ci.org/instance-vars"
	AnnotationContainer    = "concourse-ci.org/container"
	// AnnotationVersion optionally holds a resource volume's version as a
	// JSON object; fly shows it as the identifier of resource volumes.
	AnnotationVersion = "concourse-ci.org/version"
	// AnnotationCachePath holds a task cache PVC's path (the task's caches[].path).
	AnnotationCachePath        = "concourse-ci.org/cache-path"
	AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"

	// Tekton layout: one step per container named TektonStepPrefix+step.
	LabelTektonTaskRun     = "tekton.dev/taskRun"
	LabelTektonPipelineRun = "tekton.dev/pipelineRun"
	TektonStepPrefix       = "step-"

	// The plugin's own objects (docs/labels.md). Debug copies and helper
	// pods are the plugin's (managed-by ManagedByPlugin), so that no view
	// or lookup takes them for a step; they say what they are for
	// (LabelPurpose) and whose pod they serve (AnnotationHelperOf).
	// execute's one-off builds are Concourse builds (managed-by concourse,
	// seen by every view and by hijack) that say which command created
	// them, for gc.
	ManagedByPlugin    = "kubectl-concourse"
	LabelPurpose       = "kubectl-concourse.dev/purpose"
	AnnotationHelperOf = "kubectl-concourse.dev/helper-of"
	LabelCreatedBy     = "kubectl-concourse.dev/created-by"
	CreatedByExecute   = "execute"
	// AnnotationKept marks a one-off build that the user keeps (execute -b
	// or --keep): gc spares it until --older-than even once it has ended,
	// where a followed build that ended is an orphan of a plugin that died.
	AnnotationKept = "kubectl-concourse.dev/kept"
	// execute's warm input caches are claims of the plugin's own
	// (managed-by ManagedByPlugin) that the volumes view lists as volumes
	// of type VolumeTypeInputCache; they say whose input they keep
	// (AnnotationCacheOf, AnnotationCacheUser), which run holds them
	// ("<build ID>.<random> <expiry, RFC 3339> <pod>" in AnnotationLease,
	// taken by an update with the claim's resourceVersion; the pod, which
	// uses the cache in place, holds it until its task has ended, the
	// expiry only while that pod is not there) and when a run last took
	// them (AnnotationLastUsed, RFC 3339: gc's age).
	VolumeTypeInputCache = "input-cache"
	AnnotationCacheOf    = "kubectl-concourse.dev/cache-of"
	AnnotationCacheUser  = "kubectl-concourse.dev/cache-user"
	AnnotationLease      = "kubectl-concourse.dev/lease"
	AnnotationLastUsed   = "kubectl-concourse.dev/last-used"

	// Nodes and volumes.
	LabelWorker     = "concourse-ci.org/worker"
	NodeTagPrefix   = "tags.concourse-ci.org/"
	LabelVolumeType = "concourse-ci.org/volume-type"
)
