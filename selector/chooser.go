package selector

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"k8s.io/cli-runtime/pkg/printers"
)

// Label describes a match as fly's container chooser does:
// `build #2, step: unit, type: task, attempt: 1`, `resource: banana, type: check`.
func (m Match) Label() string {
	var parts []string
	switch {
	case m.Build != "":
		parts = append(parts, "build #"+m.Build)
	case m.BuildID != "":
		parts = append(parts, "build id: "+m.BuildID)
	}
	if m.Step != "" {
		parts = append(parts, "step: "+m.Step)
	}
	if m.Resource != "" {
		parts = append(parts, "resource: "+m.Resource)
	}
	if m.StepType != "" {
		parts = append(parts, "type: "+m.StepType)
	}
	if m.Attempt != "" {
		parts = append(parts, "attempt: "+m.Attempt)
	}
	if len(parts) == 0 {
		return "pod " + m.Pod.Name + ", container: " + m.Container
	}
	return strings.Join(parts, ", ")
}

// Flags returns the command-line flags that name this match in fly's
// vocabulary, e.g. `-j main/test -b 2 -s unit --step-type task -a 1`.
func (m Match) Flags() []string {
	var f []string
	pipeline := m.Pipeline
	if len(m.InstanceVars) > 0 {
		pipeline += "/" + m.InstanceVars.String()
	}
	switch {
	case m.Resource != "" && m.StepType == "check" && m.Pipeline != "":
		return append(f, "-c", pipeline+"/"+m.Resource)
	case m.Job != "" && m.Pipeline != "":
		f = append(f, "-j", pipeline+"/"+m.Job)
		if m.Build != "" {
			f = append(f, "-b", m.Build)
		}
	case m.BuildID != "":
		f = append(f, "-b", m.BuildID)
	default:
		return m.PodFlags()
	}
	if m.Step != "" {
		f = append(f, "-s", m.Step)
	}
	if m.StepType != "" {
		f = append(f, "--step-type", m.StepType)
	}
	if m.Attempt != "" {
		f = append(f, "-a", m.Attempt)
	}
	return f
}

// PodFlags names the match by pod and container, which is always unique.
func (m Match) PodFlags() []string {
	return []string{"-n", m.Pod.Namespace, "--pod", m.Pod.Name, "--container", m.Container}
}

// NoMatchError says which target matched nothing and what exists around it.
type NoMatchError struct {
	What      string   // the target in fly's words
	Namespace string   // "" for every namespace
	Selector  string   // the label selector of the LIST, if any
	Nearby    []string // what does exist, one line per build or check
}

func (e *NoMatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no container matched %s in %s", e.What, namespaceText(e.Namespace))
	if e.Selector != "" {
		fmt.Fprintf(&b, " (label selector %s)", e.Selector)
	}
	if len(e.Nearby) == 0 {
		b.WriteString("; they may have expired if your build hasn't recently finished")
		return b.String()
	}
	b.WriteString("; what exists nearby:")
	for _, line := range e.Nearby {
		b.WriteString("\n  " + line)
	}
	return b.String()
}

// AmbiguousError lists the candidates of a target that matched several
// containers, with the flags that pick each.
type AmbiguousError struct {
	Matches []Match
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d containers match; pick one with:", len(e.Matches))
	flags := uniqueFlags(e.Matches)
	for i, m := range e.Matches {
		fmt.Fprintf(&b, "\n  %s:  %s", printers.EscapeTerminal(m.Label()), printers.EscapeTerminal(shellJoin(flags[i])))
	}
	return b.String()
}

// ErrNoChoice is returned when the chooser is dismissed (EOF): like fly,
// callers end quietly with success.
var ErrNoChoice = errors.New("no container chosen")

// Choose picks one match. One match is returned as is. Several go to an
// interactive chooser when interactive is true (a numbered list on out, the
// number read from in, as fly 7 does; EOF gives ErrNoChoice), else they
// give an *AmbiguousError. None is a *NoMatchError.
func Choose(ms []Match, in io.Reader, out io.Writer, interactive bool) (*Match, error) {
	switch {
	case len(ms) == 0:
		return nil, &NoMatchError{What: "the target"}
	case len(ms) == 1:
		return &ms[0], nil
	case !interactive:
		return nil, &AmbiguousError{Matches: ms}
	}
	labels := uniqueLabels(ms)
	for i, l := range labels {
		if _, err := fmt.Fprintf(out, "%d. %s\n", i+1, printers.EscapeTerminal(l)); err != nil {
			return nil, err
		}
	}
	r := bufio.NewReader(in)
	for {
		if _, err := fmt.Fprint(out, "choose a container: "); err != nil {
			return nil, err
		}
		line, err := r.ReadString('\n')
		if n, convErr := strconv.Atoi(strings.TrimSpace(line)); convErr == nil && n >= 1 && n <= len(ms) {
			return &ms[n-1], nil
		}
		if err == io.EOF {
			fmt.Fprintln(out)
			return nil, ErrNoChoice
		}
		if err != nil {
			return nil, fmt.Errorf("read choice: %w", err)
		}
		fmt.Fprintf(out, "invalid selection %q: want a number from 1 to %d\n", printers.EscapeTerminal(strings.TrimSpace(line)), len(ms))
	}
}

// uniqueLabels returns fly's labels, adding the pipeline, job and then the
// pod where they are needed to tell two candidates apart.
func uniqueLabels(ms []Match) []string {
	labels := make([]string, len(ms))
	for i, m := range ms {
		labels[i] = m.Label()
	}
	if duplicates(labels) {
		for i, m := range ms {
			if where := m.where(); where != "" {
				labels[i] = where + ", " + labels[i]
			}
		}
	}
	if duplicates(labels) {
		for i, m := range ms {
			labels[i] += ", pod: " + m.Pod.Namespace + "/" + m.Pod.Name
		}
	}
	return labels
}

// uniqueFlags returns fly's flags for each match, or the pod's where those
// do not tell it apart.
func uniqueFlags(ms []Match) [][]string {
	count := map[string]int{}
	flags := make([][]string, len(ms))
	for i, m := range ms {
		flags[i] = m.Flags()
		count[strings.Join(flags[i], "\x00")]++
	}
	for i, m := range ms {
		if count[strings.Join(flags[i], "\x00")] > 1 {
			flags[i] = m.PodFlags()
		}
	}
	return flags
}

// where names the pipeline (with instance vars) and job or resource.
func (m Match) where() string {
	if m.Pipeline == "" {
		return ""
	}
	w := m.Pipeline
	if len(m.InstanceVars) > 0 {
		w += "/" + m.InstanceVars.String()
	}
	if m.Job != "" {
		w += "/" + m.Job
	}
	return w
}

func duplicates(list []string) bool {
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}

// summarize describes matches one line per build or check, for NoMatchError.
func summarize(ms []Match) []string {
	steps := map[string][]string{}
	for _, m := range ms {
		var key string
		switch {
		case m.Job != "" || m.Resource != "" && m.StepType == "check":
			key = m.where()
			if m.Build != "" {
				key += " build #" + m.Build
			}
			if m.Resource != "" && m.StepType == "check" {
				key = "check " + key + "/" + m.Resource
			}
		case m.BuildID != "":
			key = "one-off build id " + m.BuildID
			if m.Pipeline != "" {
				key = m.where() + " " + key
			}
		default:
			key = "pod " + m.Pod.Namespace + "/" + m.Pod.Name
		}
		step := m.Step
		if step == "" {
			step = "container " + m.Container
		}
		if m.StepType != "" {
			step += " (" + m.StepType + ")"
		}
		steps[key] = append(steps[key], step)
	}
	lines := make([]string, 0, len(steps))
	for key, s := range steps {
		sort.Strings(s)
		lines = append(lines, printers.EscapeTerminal(key+": "+strings.Join(s, ", ")))
	}
	sort.Strings(lines)
	if len(lines) > maxNearby {
		lines = append(lines[:maxNearby], fmt.Sprintf("... and %d more", len(lines)-maxNearby))
	}
	return lines
}

// maxNearby keeps a miss's explanation readable.
const maxNearby = 20

func namespaceText(ns string) string {
	if ns == "" {
		return "any namespace"
	}
	return "namespace " + ns
}

// shellJoin quotes args for a POSIX shell where needed, so a listed
// candidate can be pasted back.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r)) || strings.ContainsRune("-_./:,=@%+", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
