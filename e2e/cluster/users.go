package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-concourse/kubectl-concourse/e2e/pki"
)

// UserKubeconfig writes a kubeconfig for user (a client certificate signed by
// the cluster CA) and returns its path. RBAC grants the user nothing: tests
// bind the roles they want.
func (c *Cluster) UserKubeconfig(user string, groups ...string) (string, error) {
	pkiDir := filepath.Join(c.Dir, "pki")
	ca, err := pki.LoadOrCreateCA(pkiDir)
	if err != nil {
		return "", err
	}
	usersDir := filepath.Join(c.Dir, "users")
	if err := os.MkdirAll(usersDir, 0o755); err != nil {
		return "", err
	}
	pair, err := ca.Issue(usersDir, user, pki.Request{CommonName: user, Organizations: groups, Client: true})
	if err != nil {
		return "", err
	}
	path := filepath.Join(usersDir, user+".kubeconfig")
	return path, pki.WriteKubeconfig(path, c.Config.Host, ca.CertFile, pair, user, "")
}

var namespaces atomic.Int64

// Namespace creates a namespace for one test, waits for its default
// ServiceAccount (pods cannot be created before it exists) and deletes it
// when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	return c.namespace(t, nil)
}

func (c *Cluster) namespace(t testing.TB, annotations map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", dnsLabel(t.Name()), namespaces.Add(1))
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s: no default ServiceAccount after a minute: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dnsLabel turns a test name into the start of a valid namespace name.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}
