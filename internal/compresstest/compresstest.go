// Package compresstest holds the data the tests of every compressor and
// decompressor run on, so that each codec is tried on the same kinds of
// input. It imports the standard library only.
package compresstest

import (
	"bytes"
	"math/rand/v2"
	"strings"
)

// Inputs are data of every kind a compressor meets: nothing, one byte,
// text, zeros, random bytes and a mix of them. The same seed gives the
// same data on every run.
func Inputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 700<<10)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	var text strings.Builder
	words := strings.Fields("func return if err != nil package import type struct for range var const ctx string")
	for text.Len() < 2<<20 {
		text.WriteString(words[rng.IntN(len(words))])
		text.WriteByte(" \n\t"[rng.IntN(3)])
	}
	mixed := append(append(bytes.Repeat([]byte{0}, 300<<10), random[:100<<10]...), []byte(text.String()[:500<<10])...)
	return map[string][]byte{
		"empty": nil, "one byte": {'x'}, "short": []byte("hello, hello, hello"),
		"zeros": make([]byte, 1<<20), "random": random, "text": []byte(text.String()), "mixed": mixed,
	}
}
