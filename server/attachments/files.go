package attachments

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldsync/fieldsync/syncproto"
)

// WalkPhotos calls fn for every whole photo under dir (a store's directory
// or a backup's copy of one), in no particular order, skipping partials and
// any file that is not a photo at its place.
func WalkPhotos(dir string, fn func(hash, path string, size int64) error) error {
	return walkPhotoFiles(dir, func(hash, path string, fi fs.FileInfo) error { return fn(hash, path, fi.Size()) })
}

// walkPhotoFiles is WalkPhotos with each photo's file info.
func walkPhotoFiles(dir string, fn func(hash, path string, fi fs.FileInfo) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// The store is missing, or a photo or its directory was
				// swept away while the walk ran: nothing to visit.
				if path == dir {
					return fs.SkipAll
				}
				return nil
			}
			return err
		}
		if d.IsDir() {
			if path != dir && d.Name() == partialDirName && filepath.Dir(path) == dir {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !d.Type().IsRegular() || !syncproto.ValidSHA256(name) || PhotoPath(dir, name) != path {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by a sweep since the directory was read
		}
		if err != nil {
			return err
		}
		return fn(name, path, fi)
	})
}

// ErrDamaged is wrapped by Install's error for bytes that do not hash to
// the photo's name.
var ErrDamaged = errors.New("the bytes do not hash to the photo's name")

// Install puts a photo into the store directory dir (a server's, stopped
// or not) from r, verifying that its bytes hash to hash and fsyncing it
// before it appears, through a temporary file in dir's partial directory.
// A photo already there is left as it is. It reports whether it wrote the
// photo; a mismatch is an error and leaves nothing behind.
func Install(dir, hash string, r io.Reader) (bool, error) {
	if !syncproto.ValidSHA256(hash) {
		return false, fmt.Errorf("%q is not a SHA-256 digest", hash)
	}
	final := PhotoPath(dir, hash)
	if _, err := os.Stat(final); err == nil {
		return false, nil
	}
	partials := filepath.Join(dir, partialDirName)
	if err := os.MkdirAll(partials, 0o700); err != nil {
		return false, err
	}
	f, err := os.CreateTemp(partials, hash+".install-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return false, fmt.Errorf("photo %s: %w (they hash to %s)", hash, ErrDamaged, got)
	}
	shard := filepath.Dir(final)
	if err := mkdirSynced(dir, shard); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return false, err
	}
	return true, SyncDir(shard)
}

// SyncDir makes the renames and creations in a directory durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirSynced creates dir's missing ancestors below root, and leaf, each
// 0700, fsyncing the parent of each directory it creates.
func mkdirSynced(root, leaf string) error {
	rel, err := filepath.Rel(root, leaf)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is not inside %s", leaf, root)
	}
	parent := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		dir := filepath.Join(parent, part)
		if err := os.Mkdir(dir, 0o700); err == nil {
			if err := SyncDir(parent); err != nil {
				return err
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		}
		parent = dir
	}
	return nil
}
