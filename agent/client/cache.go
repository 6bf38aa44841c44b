package client

import (
	"context"
	"io"

	"github.com/kubectl-concourse/kubectl-concourse/agent/codec"
	"github.com/kubectl-concourse/kubectl-concourse/agent/frame"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// CacheManifest lists the entries of the warm cache at dir that the agent
// still trusts (protocol.OpCacheManifest).
func (s *Session) CacheManifest(ctx context.Context, dir protocol.Name) ([]protocol.CacheEntry, error) {
	var entries []protocol.CacheEntry
	err := s.op(ctx, func() error {
		if err := s.request(protocol.Request{Op: protocol.OpCacheManifest, Path: dir}); err != nil {
			return err
		}
		dr := frame.NewDataReader(s.fr)
		cr, err := codec.NewReader(protocol.CacheListCodec, dr)
		if err != nil {
			return err
		}
		entries, err = protocol.ReadCacheManifest(cr)
		cr.Close()
		if err != nil {
			return err
		}
		if err := dr.Drain(); err != nil {
			return err
		}
		_, err = s.reply(protocol.OpCacheManifest)
		return err
	})
	return entries, err
}

// CacheApply sends the tar stream tr of what changed, compressed with
// req.Codec, then want, the whole tree's entries, once tr has ended
// (protocol.OpCacheApply: req.Path is the cache). want is called only
// then: the tar's packer may fill it as it goes. The reply gives the
// cached tree's counts and manifest digest.
func (s *Session) CacheApply(ctx context.Context, req protocol.Request, tr io.Reader, want func() []protocol.CacheEntry) (protocol.Reply, error) {
	req.Op = protocol.OpCacheApply
	var r protocol.Reply
	err := s.op(ctx, func() error {
		if err := s.request(req); err != nil {
			return err
		}
		if err := s.copyStream(req.Codec, tr); err != nil {
			return err
		}
		if err := s.writeStream(protocol.CacheListCodec, func(w io.Writer) error {
			return protocol.WriteCacheManifest(w, want())
		}); err != nil {
			return err
		}
		if err := s.in.Flush(); err != nil {
			return err
		}
		var err error
		r, err = s.reply(protocol.OpCacheApply)
		return err
	})
	return r, err
}
