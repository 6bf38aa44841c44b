package podlogs

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "hello\r\nworld\n", "hello\r\nworld\n"},
		{"colour kept", "\x1b[1;31mred\x1b[0m\n", "\x1b[1;31mred\x1b[0m\n"},
		{"title change defused", "\x1b]0;pwned\x07x", "^[]0;pwned\x07x"},
		{"cursor move defused", "\x1b[2Jclear", "^[[2Jclear"},
		{"split across writes", "\x1b[3|2m", "\x1b[32m"},
		{"double escape", "\x1b\x1b[0m", "^[\x1b[0m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := NewWriter(&b)
			for _, part := range strings.Split(tt.in, "|") {
				if _, err := w.Write([]byte(part)); err != nil {
					t.Fatal(err)
				}
			}
			if b.String() != tt.want {
				t.Errorf("Writer(%q) = %q, want %q", tt.in, b.String(), tt.want)
			}
		})
	}
}
