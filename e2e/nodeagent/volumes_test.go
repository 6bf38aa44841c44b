package nodeagent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestKeyFiles(t *testing.T) {
	data := map[string][]byte{"b": []byte("2"), "a": []byte("1")}
	tests := []struct {
		name     string
		data     map[string][]byte
		items    []corev1.KeyToPath
		mode     *int32
		optional bool
		want     []volumeFile
		wantErr  bool
	}{
		{name: "all keys, sorted, default mode", data: data,
			want: []volumeFile{{path: "a", data: []byte("1"), mode: 0o644}, {path: "b", data: []byte("2"), mode: 0o644}}},
		{name: "items with their own mode", data: data, mode: ptr.To(int32(0o400)),
			items: []corev1.KeyToPath{{Key: "b", Path: "dir/b.txt"}, {Key: "a", Path: "a.txt", Mode: ptr.To(int32(0o755))}},
			want:  []volumeFile{{path: "dir/b.txt", data: []byte("2"), mode: 0o400}, {path: "a.txt", data: []byte("1"), mode: 0o755}}},
		{name: "missing key", data: data, items: []corev1.KeyToPath{{Key: "zz", Path: "z"}}, wantErr: true},
		{name: "missing key, optional", data: data, items: []corev1.KeyToPath{{Key: "zz", Path: "z"}}, optional: true},
		{name: "missing object", wantErr: true},
		{name: "missing object, optional", optional: true},
	}
	for _, tt := range tests {
		got, err := keyFiles(tt.data, tt.items, tt.mode, tt.optional, "secret s")
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: keyFiles error = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: keyFiles = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestWriteVolumeFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	files := []volumeFile{{path: "a", data: []byte("1"), mode: 0o400}, {path: "sub/b", data: []byte("2"), mode: 0o644}}
	if err := writeVolumeFiles(dir, files); err != nil {
		t.Fatalf("writeVolumeFiles: %v", err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != string(f.data) {
			t.Errorf("%s = %q, %v; want %q", f.path, b, err, f.data)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != f.mode {
			t.Errorf("%s mode = %v, want %v", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	for _, bad := range []string{"../escape", "/abs", ""} {
		if err := writeVolumeFiles(dir, []volumeFile{{path: bad, mode: 0o644}}); err == nil {
			t.Errorf("writeVolumeFiles accepted path %q", bad)
		}
	}
}

func TestDownwardFiles(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"b": "2", "a": "1"}}}
	items := []corev1.DownwardAPIVolumeFile{
		{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
	}
	got, err := downwardFiles(pod, items, nil)
	if err != nil {
		t.Fatalf("downwardFiles: %v", err)
	}
	want := []volumeFile{{path: "ns", data: []byte("ns"), mode: 0o644}, {path: "labels", data: []byte("a=\"1\"\nb=\"2\"\n"), mode: 0o644}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("downwardFiles = %+v, want %+v", got, want)
	}
}
