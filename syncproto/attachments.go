package syncproto

import (
	"context"
	"time"
)

// MaxMissingHashes bounds the hashes of one POST /v1/attachments/missing.
const MaxMissingHashes = 1000

// AttachmentStore is the part of the store contract that knows which
// records reference which photos, and who proved possession of a photo by
// uploading its bytes. A record's photo field (a set of SHA-256 digests) is
// indexed in the same transaction as every write of the record, so that
// the index never disagrees with the records.
//
// Knowing a digest grants nothing: a reference grants a download only when
// the user who added the digest to the record proved possession of the
// photo (PhotoUploaded), before or after the push; and a user may always
// read a photo they uploaded themselves.
type AttachmentStore interface {
	// PhotoAccess tells whether the actor may read the photo with the
	// given digest (64 lowercase hexadecimal digits): through a granting
	// reference of a record in the actor's scope, or through the actor's
	// own proven upload; and whether any record at all references it.
	// Deleted records count: their last fields are still served (pull
	// tombstones, history).
	PhotoAccess(ctx context.Context, actor Actor, sha256 string) (PhotoAccess, error)
	// ReadablePhotos returns, of the given digests, those the actor may
	// read (PhotoAccess.Readable), as a set.
	ReadablePhotos(ctx context.Context, actor Actor, sha256s []string) (map[string]bool, error)
	// PhotoUploaded records that the actor (user and device) sent every
	// byte of the photo and that they hashed to its digest: a new upload,
	// or a re-upload of a photo the server already held.
	PhotoUploaded(ctx context.Context, actor Actor, sha256 string) error
	// RemoveUnreferencedPhotos calls remove for each of the given digests
	// that no record's current fields reference and that was neither
	// uploaded nor lost its last reference at since or later, and returns
	// those that remove reported removed: the sweep of unreferenced photos.
	// The check and the removal are atomic with respect to every write of
	// the store: no push can add a reference to a photo between the check
	// that finds it unreferenced and its removal (a push waits, and then
	// finds the photo gone).
	RemoveUnreferencedPhotos(ctx context.Context, sha256s []string, since time.Time,
		remove func(sha256 string) (bool, error)) ([]string, error)
}

// PhotoAccess is the answer of AttachmentStore.PhotoAccess.
type PhotoAccess struct {
	// InScope: a record in the actor's scope references the photo, and
	// the reference grants (its maker proved possession of the photo).
	InScope bool
	// Pending: a record in the actor's scope references the photo, but
	// no such reference grants yet (its maker has not uploaded the photo).
	Pending bool
	// Uploaded: the actor proved possession of the photo themselves.
	Uploaded bool
	// Referenced: some record, in scope or not, references the photo.
	Referenced bool
}

// Readable reports whether the actor may read the photo.
func (a PhotoAccess) Readable() bool { return a.InScope || a.Uploaded }

// ValidSHA256 reports whether s is a SHA-256 digest as the protocol
// writes it: exactly 64 lowercase hexadecimal digits. Anything else (upper
// case, a path, an escaped dot) is not a photo's name.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// PhotosField is the field of the inspection forms that holds their photos:
// a set of SHA-256 digests (fixed in v1).
const PhotosField = "photos"
