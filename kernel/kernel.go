// Package kernel is what the commands share and would otherwise each copy:
// the run's clients, the one place that builds them (Clients, completed
// into an Options by Cluster and Connect), the step resolution that always
// explains a refusal (Resolve, ResolveOne), the flags several commands
// share, and the wiring of a cobra command to its Options' three phases
// (Wire). It holds no capability of its own; the capability packages
// import it, and it imports none of them.
package kernel
