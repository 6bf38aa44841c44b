// Package labelenc writes Concourse's names (teams, pipelines, jobs...),
// which may be any text, into Kubernetes labels, which may not: a valid
// label value is kept, anything else encoded, with the original in the
// annotation of the same key. It imports the standard library only, so that
// fuzzing it instruments nothing else.
package labelenc

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	// encodedKeep is how much of the sanitised name survives before the hash:
	// 52 + len("-") + hashLen = 63, the longest label value.
	encodedKeep = 52
	hashLen     = 10
)

// Encode turns a Concourse name into a label value. A valid label value is
// kept as is. Anything else has each code point outside [A-Za-z0-9._-]
// replaced by '-', is cut to 52 characters, trimmed of non-alphanumerics at
// both ends and suffixed with '-' and 10 hex digits of its sha256, so the
// result is always a valid label value and differs for most distinct names.
// Collisions remain possible (a valid name can look like an encoded one),
// which is why the original is kept in the annotation of the same key and
// Original reads it back.
func Encode(name string) string {
	if Valid(name) {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if isLabelRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > encodedKeep {
		s = s[:encodedKeep]
	}
	s = strings.TrimFunc(s, func(r rune) bool { return !isAlphanumeric(r) })
	sum := sha256.Sum256([]byte(name))
	hash := hex.EncodeToString(sum[:])[:hashLen]
	if s == "" {
		return hash
	}
	return s + "-" + hash
}

// Original returns the name a label stands for: the annotation with the same
// key when there is one (the label was encoded), else the label itself.
func Original(labels, annotations map[string]string, key string) (string, bool) {
	if v, ok := annotations[key]; ok {
		return v, true
	}
	v, ok := labels[key]
	return v, ok
}

// HasValue reports whether the object's key stands for name: the label must
// hold Encode(name), and the annotation of the same key must hold name itself
// when name was encoded (and, if present at all, in any case). Two names that
// encode alike, or a name that looks like another's encoding, are told apart.
func HasValue(labels, annotations map[string]string, key, name string) bool {
	enc := Encode(name)
	if labels[key] != enc {
		return false
	}
	v, ok := annotations[key]
	if enc != name {
		return ok && v == name
	}
	return !ok || v == name
}

// Valid says whether s is a label value as Kubernetes validates one: at
// most 63 characters of [A-Za-z0-9._-], empty or alphanumeric at both ends.
func Valid(s string) bool {
	if len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLabelRune(rune(s[i])) {
			return false
		}
	}
	return s == "" || isAlphanumeric(rune(s[0])) && isAlphanumeric(rune(s[len(s)-1]))
}

func isLabelRune(r rune) bool {
	return isAlphanumeric(r) || r == '.' || r == '_' || r == '-'
}

func isAlphanumeric(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// Put writes name under key as the contract wants it: the label holds
// Encode(name) and, when that is not name itself, the annotation of the
// same key holds the name. A nil annotations map is made when one is
// needed; Put returns it. Runtimes write the contract this way, and so
// does execute for the one-off builds it creates.
func Put(labels, annotations map[string]string, key, name string) map[string]string {
	enc := Encode(name)
	labels[key] = enc
	if enc != name {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[key] = name
	}
	return annotations
}
