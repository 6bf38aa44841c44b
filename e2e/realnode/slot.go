package realnode

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A Slot is the host-wide share of one real node: its address, its bridge,
// its pod range and its cgroup tree are all named by the slot's number, so
// that test clusters running at the same time on one machine never collide
// and whoever takes a slot can clean up what a killed owner left in it.
//
// A slot is held by listening on an abstract Unix socket named after it:
// the kernel releases the name when the holder dies, however it dies, and
// the name leaves no file behind.
type Slot struct {
	N        int
	listener *net.UnixListener
}

// MaxSlots bounds the real nodes that can run on one machine at a time.
const MaxSlots = 200

// NodeIP is the node's address: a /32 on lo, outside 127/8 (the kubelet
// refuses a loopback node IP), in 198.18.0.0/15, which RFC 2544 sets aside
// for benchmarks and no real network uses.
func (s *Slot) NodeIP() string { return fmt.Sprintf("198.18.0.%d", s.N) }

// PodSubnet is the range the node's pods get addresses from.
func (s *Slot) PodSubnet() string { return fmt.Sprintf("198.19.%d.0/24", s.N) }

// Gateway is the bridge's own address in PodSubnet: the pods' default route.
func (s *Slot) Gateway() string { return fmt.Sprintf("198.19.%d.1", s.N) }

// Bridge is the name of the pods' bridge (at most 15 bytes).
func (s *Slot) Bridge() string { return fmt.Sprintf("tc-real%d", s.N) }

// addressLabel tags the lo address, so that `ip addr` tells whose it is.
func (s *Slot) addressLabel() string { return fmt.Sprintf("lo:tc-real%d", s.N) }

// Cgroup is the name of the node's cgroup, directly under the root of
// every hierarchy: containerd, the kubelet, shims and containers all run
// below it.
func (s *Slot) Cgroup() string { return fmt.Sprintf("testcluster-real%d", s.N) }

func slotSocket(n int) string { return fmt.Sprintf("@kubectl-concourse/testcluster/real-node/%d", n) }

// ClaimSlot takes the lowest free slot. On the way it cleans every free
// slot that a dead owner left something in, the one it keeps included, so
// a SIGKILLed test cluster never breaks the next one.
func ClaimSlot(logf func(string, ...any)) (*Slot, error) {
	var claimed *Slot
	addrs := loAddresses()
	for n := 1; n <= MaxSlots; n++ {
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: slotSocket(n), Net: "unix"})
		if err != nil {
			continue // held by a running node
		}
		s := &Slot{N: n, listener: l}
		if left := s.leftovers(addrs); len(left) > 0 {
			logf("slot %d: cleaning what a dead node left: %s", n, strings.Join(left, ", "))
			if err := s.cleanHost(); err != nil {
				l.Close()
				return nil, fmt.Errorf("clean slot %d: %w", n, err)
			}
		}
		if claimed == nil {
			claimed = s
			continue
		}
		l.Close()
	}
	if claimed == nil {
		return nil, fmt.Errorf("all %d real-node slots of this machine are in use", MaxSlots)
	}
	return claimed, nil
}

// TakeSlot takes slot n if no running node holds it, so that nobody claims
// it while the caller looks at what the host has under its names (the
// lifecycle tests: a node that claimed a slot meanwhile set up the same
// address, bridge and cgroup, which are not leftovers). ok is false when a
// running node holds it; otherwise the caller must Release it.
func TakeSlot(n int) (s *Slot, ok bool) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: slotSocket(n), Net: "unix"})
	if err != nil {
		return nil, false
	}
	return &Slot{N: n, listener: l}, true
}

// Release gives the slot up; the host must be clean by then.
func (s *Slot) Release() {
	if s.listener != nil {
		s.listener.Close()
	}
}

// leftovers lists what of the slot exists on the host, given the addresses
// of lo.
func (s *Slot) leftovers(loAddrs map[string]bool) []string {
	var found []string
	if _, err := os.Stat(filepath.Join("/sys/class/net", s.Bridge())); err == nil {
		found = append(found, "bridge "+s.Bridge())
	}
	if loAddrs[s.NodeIP()] {
		found = append(found, "address "+s.NodeIP())
	}
	if dirs := cgroupDirs(s.Cgroup()); len(dirs) > 0 {
		found = append(found, "cgroup "+s.Cgroup())
	}
	return found
}

// setUpHost adds the node's address and the pods' bridge with its gateway
// address. Nothing else is changed on the host: no forwarding, no NAT.
func (s *Slot) setUpHost() error {
	if err := ip("addr", "add", s.NodeIP()+"/32", "dev", "lo", "label", s.addressLabel()); err != nil {
		return err
	}
	if err := ip("link", "add", s.Bridge(), "type", "bridge"); err != nil {
		return err
	}
	if err := ip("addr", "add", s.Gateway()+"/24", "dev", s.Bridge()); err != nil {
		return err
	}
	return ip("link", "set", s.Bridge(), "up")
}

// cleanHost removes everything the slot can hold, in an order that works
// whether its node stopped cleanly, was killed halfway, or never started:
// the processes of its cgroup tree (containers, shims, containerd, the
// kubelet), the tree, the veths left on its bridge, the bridge and the
// address. Mounts need no work: they live in the node's own mount
// namespace, which goes away with its last process.
func (s *Slot) cleanHost() error {
	var errs []error
	if err := killCgroupTree(s.Cgroup()); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroupTree(s.Cgroup()); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", s.Bridge())); err == nil {
		ports, _ := filepath.Glob(filepath.Join("/sys/class/net", s.Bridge(), "brif", "*"))
		for _, p := range ports {
			if err := ipIgnore("Cannot find device", "link", "del", filepath.Base(p)); err != nil {
				errs = append(errs, err)
			}
		}
		if err := ipIgnore("Cannot find device", "link", "del", s.Bridge()); err != nil {
			errs = append(errs, err)
		}
	}
	if loAddresses()[s.NodeIP()] {
		if err := ipIgnore("Cannot assign requested address", "addr", "del", s.NodeIP()+"/32", "dev", "lo"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// loAddresses lists the IPv4 addresses of lo.
func loAddresses() map[string]bool {
	addrs := map[string]bool{}
	out, _ := exec.Command("ip", "-o", "-4", "addr", "show", "dev", "lo").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				addr, _, _ := strings.Cut(f[i+1], "/")
				addrs[addr] = true
			}
		}
	}
	return addrs
}

func ip(args ...string) error { return ipIgnore("", args...) }

// ipIgnore runs ip(8); an error whose message contains ignore (a thing
// already gone) is not one.
func ipIgnore(ignore string, args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil && (ignore == "" || !strings.Contains(string(out), ignore)) {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
