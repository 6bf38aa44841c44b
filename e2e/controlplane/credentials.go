package controlplane

import "github.com/kubectl-concourse/kubectl-concourse/e2e/pki"

type credentials struct {
	ca                              *pki.CA
	apiserver, kubeletClient, admin pki.Pair
	nodeServing, serviceAccount     pki.Pair
}

func issueCredentials(dir string) (credentials, error) {
	var c credentials
	var err error
	if c.ca, err = pki.LoadOrCreateCA(dir); err != nil {
		return c, err
	}
	issue := []struct {
		pair *pki.Pair
		name string
		req  pki.Request
	}{
		{&c.apiserver, "apiserver", pki.Request{CommonName: "kube-apiserver", Server: true, Hosts: []string{
			"127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}}},
		{&c.kubeletClient, "apiserver-kubelet-client", pki.Request{CommonName: "kube-apiserver-kubelet-client",
			Organizations: []string{"system:masters"}, Client: true}},
		{&c.admin, "admin", pki.Request{CommonName: "admin", Organizations: []string{"system:masters"}, Client: true}},
		{&c.nodeServing, "node-serving", pki.Request{CommonName: "node-agent", Server: true, Hosts: []string{"127.0.0.1", "localhost"}}},
	}
	for _, i := range issue {
		if *i.pair, err = c.ca.Issue(dir, i.name, i.req); err != nil {
			return c, err
		}
	}
	c.serviceAccount, err = pki.WriteServiceAccountKey(dir)
	return c, err
}
