package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/server/attachments"
)

// photoCopy counts what backupPhotos or restorePhotos did.
type photoCopy struct {
	photos  int   // copied (backup) or installed (restore)
	bytes   int64 // their bytes
	present int   // already in the target (restore)
	damaged int   // whose bytes do not hash to their name: left out
}

// backupPhotos copies every whole photo of the store directory src (not
// the partial uploads) into the new directory dst, in the store's layout,
// checking each against its name and fsyncing files and directories. A
// photo whose bytes do not match its name is left out and named on stderr.
// A missing src (a server that never stored a photo) copies nothing.
func backupPhotos(src, dst string, stderr io.Writer) (photoCopy, error) {
	var out photoCopy
	if err := os.Mkdir(dst, 0o700); err != nil {
		return out, err
	}
	dirs := map[string]bool{dst: true}
	err := attachments.WalkPhotos(src, func(hash, path string, size int64) error {
		target := attachments.PhotoPath(dst, hash)
		for d := filepath.Dir(target); d != dst; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		n, got, err := copyHashed(path, target)
		if err != nil {
			return err
		}
		if got != hash {
			os.Remove(target)
			out.damaged++
			fmt.Fprintf(stderr, "photo %s is damaged (its bytes hash to %s): not copied\n", path, got)
			return nil
		}
		out.photos++
		out.bytes += n
		return nil
	})
	if err != nil {
		return out, err
	}
	for d := range dirs {
		if err := attachments.SyncDir(d); err != nil {
			return out, err
		}
	}
	return out, nil
}

// copyHashed copies a file into a new file of mode 0600, fsynced, and
// returns its size and the SHA-256 of what it copied.
func copyHashed(from, to string) (int64, string, error) {
	in, err := os.Open(from)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// restorePhotos installs every photo of a backup's photo directory into
// the store directory dst (attachments.Install: checked against its name,
// fsynced, moved in whole). Photos already there are kept; damaged ones
// are left out and named on stderr.
func restorePhotos(src, dst string, stderr io.Writer) (photoCopy, error) {
	var out photoCopy
	err := attachments.WalkPhotos(src, func(hash, path string, size int64) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		wrote, err := attachments.Install(dst, hash, f)
		switch {
		case errors.Is(err, attachments.ErrDamaged):
			out.damaged++
			fmt.Fprintf(stderr, "photo %s of the backup is damaged: not restored (%v)\n", hash, err)
		case err != nil:
			return err
		case wrote:
			out.photos++
			out.bytes += size
		default:
			out.present++
		}
		return nil
	})
	return out, err
}
