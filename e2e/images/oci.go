package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"
)

// Media types of the OCI image specification that OCIImage produces.
const (
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Descriptor points at a blob by digest (OCI image-spec descriptor).
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// OCI is an image of the store as OCI blobs: a manifest, a config and one
// uncompressed layer holding the rootfs. Real nodes pull it from Registry.
type OCI struct {
	Manifest       []byte
	ManifestDigest string
	Blobs          map[string][]byte // by digest: the config and the layer
}

// layerTime is the modification time of every entry of a layer: the same
// rootfs always gives the same digest.
var layerTime = time.Unix(0, 0).UTC()

// OCIImage packs img as an OCI image for the machine's architecture.
func OCIImage(img *Image) (*OCI, error) {
	layer, err := tarRootfs(img.Rootfs)
	if err != nil {
		return nil, fmt.Errorf("pack image %s: %w", img.Name, err)
	}
	layerDigest := digestOf(layer)
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       img.Config,
		// An uncompressed layer's diff ID is its digest.
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	if err != nil {
		return nil, err
	}
	configDigest := digestOf(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeManifest,
		"config":        Descriptor{MediaType: MediaTypeConfig, Digest: configDigest, Size: int64(len(config))},
		"layers":        []Descriptor{{MediaType: MediaTypeLayer, Digest: layerDigest, Size: int64(len(layer))}},
	})
	if err != nil {
		return nil, err
	}
	return &OCI{
		Manifest:       manifest,
		ManifestDigest: digestOf(manifest),
		Blobs:          map[string][]byte{configDigest: config, layerDigest: layer},
	}, nil
}

// tarRootfs writes the files under rootfs as a layer: sorted, owned by root,
// with their permission bits and a fixed time.
func tarRootfs(rootfs string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != rootfs {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(rootfs, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(fi.Mode().Perm()), ModTime: layerTime, Format: tar.FormatPAX}
		if fi.Mode()&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		var body []byte
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return nil, err
			}
		case fi.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		case fi.Mode().IsRegular():
			h.Typeflag = tar.TypeReg
			if body, err = os.ReadFile(p); err != nil {
				return nil, err
			}
			h.Size = int64(len(body))
		default:
			return nil, fmt.Errorf("%s: only files, directories and symlinks can be packed", p)
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
