//go:build !unix

package attachments

// diskFree cannot tell the free space on this system: the floor is not
// checked (a full disk is still a 503).
func diskFree(dir string) (free int64, ok bool) { return 0, false }
