package transfer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// An upload sends a symlink as a symlink, wherever it points, and nothing
// below one: the container's tar would write it through the link.
func TestPackSendsSymlinksAsData(t *testing.T) {
	tests := []struct {
		name  string
		tree  map[string]string
		files []string          // the selection (nil: everything)
		want  map[string]string // archive name → "dir", "file" or "-> target"
	}{
		{
			name: "absolute and escaping links, whole tree",
			tree: map[string]string{"a": "x", "abs": "link:/etc/passwd", "d/up": "link:../../../x", "root": "link:/"},
			want: map[string]string{"src/": "dir", "src/a": "file", "src/abs": "-> /etc/passwd", "src/d/": "dir",
				"src/d/up": "-> ../../../x", "src/root": "-> /"},
		},
		{
			name:  "selected files below a directory that became a symlink",
			tree:  map[string]string{"other/f": "y", "d": "link:other", "keep": "k"},
			files: []string{"d", "d/f", "keep", "other/f"},
			want: map[string]string{"src/": "dir", "src/d": "-> other", "src/keep": "file", "src/other/": "dir",
				"src/other/f": "file"},
		},
		{
			name:  "a symlink met only as a parent of selected files",
			tree:  map[string]string{"other/f": "y", "d": "link:/etc"},
			files: []string{"d/g/h", "d/f"}, // git's order would be d/f first
			want:  map[string]string{"src/": "dir", "src/d": "-> /etc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			writeTree(t, src, tt.tree)
			var w warnings
			p := newPacker(src, "src", tt.files, false, w.warnf, nil)
			got := packed(t, p)
			delete(got, "end")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pack sent %v\nwant %v", got, tt.want)
			}
			if w.b.Len() != 0 {
				t.Errorf("warnings: %s", w.b.String())
			}
		})
	}
}

// packed is what p's pack sends (archive name → "dir", "file" or
// "-> target"), its end entry left out.
func packed(t *testing.T, p *packer) map[string]string {
	t.Helper()
	var b bytes.Buffer
	if err := p.pack(&b, nil, endEntry{name: "end", content: "n"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&b)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			got[h.Name] = "dir"
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		default:
			got[h.Name] = "file"
		}
	}
	delete(got, "end")
	return got
}

// The pack replays the walk size made: what was created since is not
// sent, and what was deleted since is left out, header and all, as a walk
// after the deletion would leave it; the tree is not walked again.
func TestPackReplaysTheSizeWalk(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, src, map[string]string{"a": "x", "d/gone": "y", "d/kept": "z"})
	var w warnings
	p := newPacker(src, "src", nil, false, w.warnf, nil)
	if total, files, err := p.size(); err != nil || total != 3 || files != 3 {
		t.Fatalf("size = %d, %d, %v", total, files, err)
	}
	if err := os.Remove(filepath.Join(src, "d/gone")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, src, map[string]string{"new": "n"})
	want := map[string]string{"src/": "dir", "src/a": "file", "src/d/": "dir", "src/d/kept": "file"}
	if got := packed(t, p); !reflect.DeepEqual(got, want) {
		t.Errorf("pack sent %v\nwant %v", got, want)
	}
}
