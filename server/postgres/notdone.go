package postgres

import (
	"context"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Snapshot is not implemented yet (see the package documentation): it
// returns ErrNotImplemented without calling the sink.
func (s *Store) Snapshot(ctx context.Context, actor syncproto.Actor, q syncproto.SnapshotQuery, sink syncproto.SnapshotSink) error {
	return notDone("Snapshot")
}

// Behind is not implemented yet (see the package documentation): it
// returns ErrNotImplemented.
func (s *Store) Behind(ctx context.Context, actor syncproto.Actor, after []int64) ([]int64, error) {
	return nil, notDone("Behind")
}
