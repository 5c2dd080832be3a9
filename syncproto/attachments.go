package syncproto

import "context"

// MaxMissingHashes bounds the hashes of one POST /v1/attachments/missing.
const MaxMissingHashes = 1000

// AttachmentStore is the part of the store contract that knows which
// records reference which photos. A record's photo field (a set of SHA-256
// digests) is indexed in the same transaction as every write of the
// record, so that the index never disagrees with the records.
type AttachmentStore interface {
	// PhotoAccess tells whether a record in the actor's scope references
	// the photo with the given digest (64 lowercase hexadecimal digits),
	// and whether any record at all does. Deleted records count: their
	// last fields are still served (pull tombstones, history).
	PhotoAccess(ctx context.Context, actor Actor, sha256 string) (PhotoAccess, error)
}

// PhotoAccess is the answer of AttachmentStore.PhotoAccess.
type PhotoAccess struct {
	// InScope: a record in the actor's scope references the photo.
	InScope bool
	// Referenced: some record, in scope or not, references the photo.
	Referenced bool
}

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
