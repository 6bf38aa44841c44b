package execute

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

func TestPlacementAsConcourse(t *testing.T) {
	node := func(labels map[string]string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	}
	linux := map[string]string{corev1.LabelOSStable: "linux"}
	mainTeam := map[string]string{corev1.LabelOSStable: "linux", selector.LabelTeam: "main"}
	gpuMain := map[string]string{corev1.LabelOSStable: "linux", selector.LabelTeam: "main", selector.NodeTagPrefix + "gpu": "true"}
	tests := []struct {
		name  string
		team  string
		tags  []string
		nodes []map[string]string
		want  string // "" when the build can be placed
	}{
		{"a general worker", "", nil, []map[string]string{linux}, ""},
		{"only another team's workers", "", nil, []map[string]string{mainTeam}, "belongs to another team's workers"},
		{"its team's worker", "main", nil, []map[string]string{mainTeam}, ""},
		{"a team's build on a general worker", "main", nil, []map[string]string{linux}, ""},
		{"a team's tagged worker", "main", []string{"gpu"}, []map[string]string{linux, gpuMain}, ""},
		{"another team's tagged worker", "ops", []string{"gpu"}, []map[string]string{linux, gpuMain}, "not team ops"},
		{"no such tag", "", []string{"arm"}, []map[string]string{linux}, "no node has tag arm"},
		{"no such platform", "", nil, []map[string]string{{corev1.LabelOSStable: "windows"}}, "no node runs platform linux"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := oneOff{Team: tt.team, Tags: tt.tags, Config: TaskConfig{Platform: "linux"}}
			var nodes []corev1.Node
			for _, l := range tt.nodes {
				nodes = append(nodes, node(l))
			}
			got := strings.Join(b.unplaceable(nodes), "; ")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("unplaceable = %q, want %q", got, tt.want)
			}
			// The pod's node selector (the platform) and terms say the same as the check.
			for _, n := range nodes {
				scheduled := n.Labels[corev1.LabelOSStable] == b.Config.Platform && schedulable(b.placement(), n)
				if scheduled != b.fits(n) {
					t.Errorf("node %v: the scheduler would place the pod: %v, the check says it fits: %v", n.Labels, scheduled, b.fits(n))
				}
			}
		})
	}
}

// schedulable evaluates node selector terms (ORed) of Exists, DoesNotExist
// and In requirements (ANDed) against a node, as the scheduler does.
func schedulable(terms []corev1.NodeSelectorTerm, n corev1.Node) bool {
	for _, term := range terms {
		ok := true
		for _, r := range term.MatchExpressions {
			v, has := n.Labels[r.Key]
			switch r.Operator {
			case corev1.NodeSelectorOpExists:
				ok = ok && has
			case corev1.NodeSelectorOpDoesNotExist:
				ok = ok && !has
			case corev1.NodeSelectorOpIn:
				ok = ok && has && slices.Contains(r.Values, v)
			}
		}
		if ok {
			return true
		}
	}
	return false
}
