// Package selectortest writes the label contract as a Concourse runtime
// does, for the fixtures of other packages' tests (as httptest serves
// net/http's): the plugin itself only reads the contract.
package selectortest

import "github.com/kubectl-concourse/kubectl-concourse/selector"

// Put stores name under key: the label holds selector.Encode(name) and,
// when that is not name itself, the annotation of the same key holds the
// name (docs/labels.md). A nil annotations map is made when one is needed;
// Put returns it.
func Put(labels, annotations map[string]string, key, name string) map[string]string {
	enc := selector.Encode(name)
	labels[key] = enc
	if enc != name {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[key] = name
	}
	return annotations
}
