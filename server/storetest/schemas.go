package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testPublishedSchemas: a published schema version is kept as it was
// published, survives a second publication of the same content, refuses
// another content (EConflict), and OpenCatalog publishes the built-in set
// once and accepts it again.
func testPublishedSchemas(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s := open(t, clock)
	ctx := context.Background()
	if got, err := s.PublishedSchemas(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a new store has published versions: %v %v", got, err)
	}
	set := schema.BuiltIn()
	served, err := syncproto.OpenCatalog(ctx, s, set, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if served.Latest().Version != set.Latest().Version {
		t.Fatalf("served %v", served.Versions())
	}
	got, err := s.PublishedSchemas(ctx)
	if err != nil || len(got) != len(set.Versions()) {
		t.Fatalf("published %v %v", got, err)
	}
	for i, p := range got {
		if n := i + 1; p.Version != n || p.Digest != set.Digest(n) || string(p.Document) != string(set.Document(n)) || !p.PublishedAt.Equal(T0) {
			t.Fatalf("stored %+v", p)
		}
	}
	clock.Advance(time.Hour)
	if _, err := syncproto.OpenCatalog(ctx, s, set, clock.Now()); err != nil {
		t.Fatalf("the same set again: %v", err)
	}
	if err := s.PublishSchema(ctx, syncproto.PublishedSchema{Version: 1, Digest: "other", Document: []byte(`{}`), PublishedAt: clock.Now()}); syncproto.ErrorCode(err) != syncproto.EConflict {
		t.Fatalf("version 1 republished with another content: %v", err)
	}
	if got, _ := s.PublishedSchemas(ctx); len(got) != len(set.Versions()) || got[0].Digest != set.Digest(1) || !got[0].PublishedAt.Equal(T0) {
		t.Fatalf("a published version changed: %+v", got)
	}
}
