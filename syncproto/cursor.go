package syncproto

import (
	"encoding/base64"
	"strconv"
	"strings"
)

const cursorPrefix = "fs1."

// EncodeCursor renders a position in the global change sequence as the
// opaque cursor clients hold.
func EncodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

// ParseCursor reads a cursor made by EncodeCursor. The empty cursor is the
// beginning (0). Anything else is an EInvalid error with the path "cursor".
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	bad := &Error{Code: EInvalid, Title: "Invalid cursor", Message: "the cursor was not issued by this server",
		Errors: []FieldError{{Path: "cursor", Message: "must be a cursor returned by this server"}}}
	if len(s) > 64 {
		return 0, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, bad
	}
	digits := strings.TrimPrefix(string(b), cursorPrefix)
	if digits == "" || len(digits) > 18 || (len(digits) > 1 && digits[0] == '0') {
		return 0, bad
	}
	seq, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || seq < 0 || EncodeCursor(seq) != s {
		return 0, bad
	}
	return seq, nil
}
