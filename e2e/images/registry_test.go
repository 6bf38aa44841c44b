package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestRegistryServesTheStore pulls an image the way containerd does:
// resolve the tag, fetch the manifest by digest, then its config and layer.
func TestRegistryServesTheStore(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "tool", "rootfs")
	for _, d := range []string{"bin", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "tool"), []byte("#!tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool", filepath.Join(rootfs, "bin", "alias")); err != nil {
		t.Fatal(err)
	}
	cfg := `{"Entrypoint":["/bin/tool"],"WorkingDir":"/work"}`
	if err := os.WriteFile(filepath.Join(dir, "tool", "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()

	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	if resp, _ := get("GET", "/v2/"); resp.StatusCode != 200 {
		t.Fatalf("/v2/: %s", resp.Status)
	}
	resp, _ := get("HEAD", "/v2/library/tool/manifests/latest")
	digest := resp.Header.Get("Docker-Content-Digest")
	if resp.StatusCode != 200 || digest == "" || resp.Header.Get("Content-Type") != MediaTypeManifest {
		t.Fatalf("HEAD manifest: %s %v", resp.Status, resp.Header)
	}
	// Any registry path and tag names the store image, as on agent nodes.
	resp, manifest := get("GET", "/v2/team/sub/tool/manifests/"+digest)
	if resp.StatusCode != 200 || digestOf(manifest) != digest {
		t.Fatalf("GET manifest by digest: %s", resp.Status)
	}
	var m struct {
		Config Descriptor
		Layers []Descriptor
	}
	if err := json.Unmarshal(manifest, &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest %s: %v", manifest, err)
	}
	resp, config := get("GET", "/v2/library/tool/blobs/"+m.Config.Digest)
	if resp.StatusCode != 200 || digestOf(config) != m.Config.Digest || !bytes.Contains(config, []byte(`"WorkingDir":"/work"`)) {
		t.Errorf("config blob: %s %s", resp.Status, config)
	}
	resp, layer := get("GET", "/v2/library/tool/blobs/"+m.Layers[0].Digest)
	if resp.StatusCode != 200 || digestOf(layer) != m.Layers[0].Digest {
		t.Fatalf("layer blob: %s", resp.Status)
	}
	entries := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = string(h.Typeflag) + " " + h.Linkname
		if h.Name == "tmp/" && h.Mode != 0o1777 {
			t.Errorf("tmp/ mode %o, want 1777", h.Mode)
		}
	}
	for name, want := range map[string]string{"bin/": "5 ", "bin/tool": "0 ", "bin/alias": "2 tool", "tmp/": "5 "} {
		if entries[name] != want {
			t.Errorf("layer entry %s = %q, want %q (all: %v)", name, entries[name], want, entries)
		}
	}

	for _, path := range []string{
		"/v2/library/unknown/manifests/latest",
		"/v2/library/tool/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000",
		"/v2/library/tool/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
	} {
		if resp, _ := get("GET", path); resp.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
	if resp, _ := get("PUT", "/v2/library/tool/manifests/latest"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %s, want 405", resp.Status)
	}
}
