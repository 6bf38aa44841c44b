package images

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Registry serves the images of a store over the read-only part of the OCI
// distribution API (what a pull needs), so that a real node's containerd
// pulls them as it would from any registry. A repository maps to a store
// image as Name does: registry host, path, tag are ignored ("docker.io/
// library/busybox:1.36" is busybox), and a digest reference must be the
// image's own manifest. An unknown image is a 404, a failed pull.
type Registry struct {
	images map[string]*OCI      // by store name
	blobs  map[string]blobEntry // by digest, across images
}

type blobEntry struct {
	data      []byte
	mediaType string
}

// NewRegistry packs every image of the store under dir.
func NewRegistry(dir string) (*Registry, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	r := &Registry{images: map[string]*OCI{}, blobs: map[string]blobEntry{}}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "config.json")); err != nil {
			continue
		}
		img, err := Lookup(dir, e.Name())
		if err != nil {
			return nil, err
		}
		oci, err := OCIImage(img)
		if err != nil {
			return nil, err
		}
		r.images[img.Name] = oci
		r.blobs[oci.ManifestDigest] = blobEntry{oci.Manifest, MediaTypeManifest}
		var m struct {
			Config Descriptor
			Layers []Descriptor
		}
		if err := json.Unmarshal(oci.Manifest, &m); err != nil {
			return nil, err
		}
		for _, d := range append(m.Layers, m.Config) {
			r.blobs[d.Digest] = blobEntry{oci.Blobs[d.Digest], d.MediaType}
		}
	}
	return r, nil
}

// Images lists the store names the registry serves.
func (r *Registry) Images() []string {
	var names []string
	for n := range r.images {
		names = append(names, n)
	}
	return names
}

// ServeHTTP answers /v2/, manifests and blobs (GET and HEAD).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	if path == req.URL.Path {
		http.NotFound(w, req)
		return
	}
	if path == "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
		return
	}
	if repo, ref, ok := cutLast(path, "/manifests/"); ok {
		oci := r.images[Name(repo)]
		if oci == nil || strings.Contains(ref, ":") && ref != oci.ManifestDigest {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest unknown: %s:%s is not in the test cluster's image store", repo, ref))
			return
		}
		serveBlob(w, req, oci.Manifest, MediaTypeManifest, oci.ManifestDigest)
		return
	}
	if _, digest, ok := cutLast(path, "/blobs/"); ok {
		b, found := r.blobs[digest]
		if !found {
			registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown: "+digest)
			return
		}
		serveBlob(w, req, b.data, b.mediaType, digest)
		return
	}
	registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "not a manifest or blob path")
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

func serveBlob(w http.ResponseWriter, req *http.Request, data []byte, mediaType, digest string) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	// ServeContent sets the length and answers HEAD and ranges, which
	// containerd uses to resume.
	http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(data))
}

func registryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": message}}})
}
