package syncproto

import "bytes"

// PhotoSniffLen is how many leading bytes PhotoType looks at; a photo's
// type is decided once that many (or all, for a shorter file) are known.
const PhotoSniffLen = 64

// PhotoTypes names the photo formats the server takes, for messages.
const PhotoTypes = "JPEG, PNG, WebP or HEIC/HEIF"

var pngSignature = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}

// heicBrands are the ISO-BMFF brands of HEVC-coded HEIF images, the
// photos of phones and tablets that save HEIC.
var heicBrands = map[string]bool{"heic": true, "heix": true, "heim": true, "heis": true, "hevc": true, "hevx": true}

// PhotoType returns the media type of a photo from its first bytes (up to
// PhotoSniffLen): image/jpeg, image/png, image/webp, image/heic or image/heif;
// "" for anything else, which the server does not take as a photo. It
// reads the bytes themselves, never a name or a header the client sent.
func PhotoType(b []byte) string {
	if len(b) > PhotoSniffLen {
		b = b[:PhotoSniffLen]
	}
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "image/jpeg"
	case bytes.HasPrefix(b, pngSignature):
		return "image/png"
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image/webp"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return sniffHEIF(b)
	}
	return ""
}

// sniffHEIF reads an ISO-BMFF ftyp box (size, "ftyp", major brand, minor
// version, compatible brands) and tells HEIC and HEIF still images from
// the other files of the family (MP4 video, AVIF, which the server does
// not take).
func sniffHEIF(b []byte) string {
	size := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if size < 16 {
		return ""
	}
	end := min(size, len(b))
	major := string(b[8:12])
	brands := []string{major}
	for i := 16; i+4 <= end; i += 4 {
		brands = append(brands, string(b[i:i+4]))
	}
	general := false
	for _, br := range brands {
		switch {
		case heicBrands[br]:
			return "image/heic"
		case br == "avif" || br == "avis":
			return ""
		case br == "mif1" || br == "msf1" || br == "heif":
			general = true
		}
	}
	if general {
		return "image/heif"
	}
	return ""
}
