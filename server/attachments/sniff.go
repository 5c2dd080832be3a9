package attachments

import "github.com/fieldsync/fieldsync/syncproto"

// SniffLen is how many leading bytes Sniff looks at; a photo's type is
// decided once that many (or all, for a shorter file) have arrived.
const SniffLen = syncproto.PhotoSniffLen

// Sniff returns the media type of a photo from its first bytes (up to
// SniffLen): image/jpeg, image/png, image/webp, image/heic or image/heif;
// "" for anything else, which the server does not take as a photo. It
// reads the bytes themselves, never a name or a header the client sent.
// It is syncproto.PhotoType, so that a tablet refuses what the server
// would.
func Sniff(b []byte) string { return syncproto.PhotoType(b) }
