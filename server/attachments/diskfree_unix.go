//go:build unix

package attachments

import "golang.org/x/sys/unix"

// diskFree is the space an unprivileged process may still write on the
// file system of dir, in bytes; ok is false when it cannot be told.
func diskFree(dir string) (free int64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true //nolint:unconvert // the field types differ between systems
}
