package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fieldsync/fieldsync/server/bench"
	"github.com/fieldsync/fieldsync/server/postgres"
)

// postgresEngine is bench's engine on PostgreSQL (bench --store URL): the
// database at base is the generated one (kept between runs, as --data is
// on SQLite); each run works on a copy made with CREATE DATABASE …
// TEMPLATE, dropped at its end, and the raw loops on databases of their
// own, dropped too.
type postgresEngine struct {
	base string

	mu  sync.Mutex
	dbs map[string]string // a data directory or a raw loop's path -> its database's URL
}

var _ bench.ExternalEngine = (*postgresEngine)(nil)

func newPostgresEngine(base string) *postgresEngine {
	return &postgresEngine{base: base, dbs: map[string]string{}}
}

// url is the database of dir: its copy, or the generated database.
func (e *postgresEngine) url(dir string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if u, ok := e.dbs[dir]; ok {
		return u
	}
	return e.base
}

// sibling is a new database name beside the generated one's.
func (e *postgresEngine) sibling(kind string) (string, error) {
	name, err := baseDatabase(e.base)
	if err != nil {
		return "", err
	}
	b := make([]byte, 4)
	rand.Read(b)
	return strings.ToLower(name + "_" + kind + "_" + hex.EncodeToString(b)), nil
}

func (e *postgresEngine) Open(ctx context.Context, dir string) (bench.Store, error) {
	return openPostgres(ctx, e.url(dir), 0)
}

func (e *postgresEngine) Copy(src, dst string) error {
	name, err := e.sibling("run")
	if err != nil {
		return err
	}
	u, err := postgres.CopyDatabase(context.Background(), e.url(src), name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.dbs[dst] = u
	e.mu.Unlock()
	return nil
}

func (e *postgresEngine) StoreArgs(dir string) []string { return []string{"--store", e.url(dir)} }

func (e *postgresEngine) DatabaseBytes(ctx context.Context, dir string) (int64, error) {
	return postgres.DatabaseBytes(ctx, e.url(dir))
}

func (e *postgresEngine) Remove(dir string) error {
	e.mu.Lock()
	u, ok := e.dbs[dir]
	delete(e.dbs, dir)
	e.mu.Unlock()
	if !ok {
		return nil
	}
	return postgres.DropDatabase(context.Background(), u)
}

func (e *postgresEngine) RawUpsert(path string, rows int, durable bool) (float64, error) {
	name, err := e.sibling("raw")
	if err != nil {
		return 0, err
	}
	u, err := postgres.CreateDatabase(context.Background(), e.base, name)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	e.dbs[path] = u
	e.mu.Unlock()
	return postgres.RawUpsert(context.Background(), u, rows, durable)
}

func (e *postgresEngine) RawRead(path string) (float64, error) {
	e.mu.Lock()
	u, ok := e.dbs[path]
	e.mu.Unlock()
	if !ok {
		return 0, errors.New("bench: no raw loop at " + filepath.Base(path))
	}
	return postgres.RawRead(context.Background(), u)
}

// Close drops every database the engine made and still holds.
func (e *postgresEngine) Close() error {
	e.mu.Lock()
	var urls []string
	for _, u := range e.dbs {
		urls = append(urls, u)
	}
	e.dbs = map[string]string{}
	e.mu.Unlock()
	var errs []error
	for _, u := range urls {
		errs = append(errs, postgres.DropDatabase(context.Background(), u))
	}
	return errors.Join(errs...)
}

// baseDatabase is the database a --store URL names.
func baseDatabase(store string) (string, error) {
	name := ""
	if i := strings.Index(store, "://"); i >= 0 {
		rest := store[i+3:]
		if j := strings.Index(rest, "/"); j >= 0 {
			name = rest[j+1:]
			if k := strings.IndexAny(name, "?#"); k >= 0 {
				name = name[:k]
			}
		}
	}
	if name == "" {
		return "", errors.New("bench --store: the URL must name a database (postgres://host/fieldsync_bench)")
	}
	return name, nil
}
