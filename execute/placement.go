package execute

import (
	"fmt"
	"github.com/kubectl-concourse/kubectl-concourse/selector/labelenc"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubectl-concourse/kubectl-concourse/selector"
)

// placement is where Concourse places a build, as node selector terms (any
// one of them): on a node with every tag, and either a node of no team's or
// one of the build's own team's workers (concourse-ci.org/team). A team's
// workers take only that team's builds.
func (b oneOff) placement() []corev1.NodeSelectorTerm {
	var tags []corev1.NodeSelectorRequirement
	for _, tag := range b.Tags {
		tags = append(tags, corev1.NodeSelectorRequirement{Key: selector.NodeTagPrefix + tag, Operator: corev1.NodeSelectorOpExists})
	}
	term := func(team corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: append(slices.Clone(tags), team)}
	}
	terms := []corev1.NodeSelectorTerm{term(corev1.NodeSelectorRequirement{Key: selector.LabelTeam, Operator: corev1.NodeSelectorOpDoesNotExist})}
	if b.Team != "" {
		terms = append(terms, term(corev1.NodeSelectorRequirement{Key: selector.LabelTeam, Operator: corev1.NodeSelectorOpIn,
			Values: []string{labelenc.Encode(b.Team)}}))
	}
	return terms
}

// unplaceable says what no node offers the build: its platform, a tag, or a
// node its team may use (placement).
func (b oneOff) unplaceable(nodes []corev1.Node) []string {
	var missing []string
	platform := b.Config.Platform
	if !anyNode(nodes, func(n corev1.Node) bool { return n.Labels[corev1.LabelOSStable] == platform }) {
		missing = append(missing, fmt.Sprintf("no node runs platform %s (label %s=%s)", platform, corev1.LabelOSStable, platform))
	}
	for _, tag := range b.Tags {
		if !anyNode(nodes, func(n corev1.Node) bool { _, ok := n.Labels[selector.NodeTagPrefix+tag]; return ok }) {
			missing = append(missing, fmt.Sprintf("no node has tag %s (label %s%s)", tag, selector.NodeTagPrefix, tag))
		}
	}
	if len(missing) > 0 {
		return missing
	}
	if !anyNode(nodes, b.fits) {
		who := "a build without --team"
		if b.Team != "" {
			who = "team " + b.Team
		}
		missing = append(missing, fmt.Sprintf("every node with platform %s and the tags belongs to another team's workers (label %s), which take only their team's builds, not %s",
			platform, selector.LabelTeam, who))
	}
	return missing
}

// fits says whether node may run the build: its platform, every tag, and
// either no team or the build's (placement's terms, read on one node).
func (b oneOff) fits(n corev1.Node) bool {
	for _, tag := range b.Tags {
		if _, ok := n.Labels[selector.NodeTagPrefix+tag]; !ok {
			return false
		}
	}
	team, hasTeam := n.Labels[selector.LabelTeam]
	ours := !hasTeam || b.Team != "" && team == labelenc.Encode(b.Team)
	return n.Labels[corev1.LabelOSStable] == b.Config.Platform && ours
}

func anyNode(nodes []corev1.Node, ok func(corev1.Node) bool) bool {
	for _, n := range nodes {
		if ok(n) {
			return true
		}
	}
	return false
}
