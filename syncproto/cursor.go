package syncproto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
)

// Cursor is a position in the global change sequence, as pull hands it to
// a tablet. It also names the scope it was issued for, so that a pull made
// under a changed scope (narrowed or widened) first sends the records that
// left it as removals and the records that entered it, then continues.
type Cursor struct {
	// Seq is the position in the change log: every change up to it has
	// been delivered.
	Seq int64
	// Scope is the ScopeKey the cursor was issued for; empty for the
	// beginning or a cursor issued without a scope.
	Scope string
	// Transition, while a scope change is being delivered, is the position
	// reached in the scan of records up to Seq; 0 otherwise.
	Transition int64
}

const cursorPrefix = "fs1."

// CursorCodec renders cursors as the opaque strings clients hold, signed
// with the server's secret: a cursor names the scope it was issued for, and
// a forged one must not make the server describe records outside the
// caller's scope.
type CursorCodec struct {
	key []byte
}

// NewCursorCodec returns a codec signing with key (32 random bytes kept by
// the store).
func NewCursorCodec(key []byte) *CursorCodec { return &CursorCodec{key: append([]byte(nil), key...)} }

const macLen = 12

func (k *CursorCodec) mac(payload string) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:macLen])
}

// Encode renders a cursor.
func (k *CursorCodec) Encode(c Cursor) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(cursorText(c)))
	return p + "." + k.mac(p)
}

// Parse reads a cursor made by Encode with the same key. The empty string
// is the beginning. Anything else is an EInvalid error with the path
// "cursor".
func (k *CursorCodec) Parse(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	bad := &Error{Code: EInvalid, Title: "Invalid cursor", Message: "the cursor was not issued by this server",
		Errors: []FieldError{{Path: "cursor", Message: "must be a cursor returned by this server"}}}
	p, sig, ok := strings.Cut(s, ".")
	if !ok || len(s) > 4096 || !hmac.Equal([]byte(sig), []byte(k.mac(p))) {
		return Cursor{}, bad
	}
	c, err := parseCursorText(p)
	if err != nil {
		return Cursor{}, bad
	}
	return c, nil
}

const listPrefix = "fsl."

// EncodeList renders a position in a supervisor list (conflicts,
// quarantine, receipts) as an opaque cursor of that list, so that it cannot
// be mistaken for a change-log cursor or another list's.
func (k *CursorCodec) EncodeList(list string, pos int64) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(listPrefix + list + "." + strconv.FormatInt(pos, 10)))
	return p + "." + k.mac(p)
}

// ParseList reads a cursor made by EncodeList for the same list; the empty
// string is the start (0). Anything else is an EInvalid error with the
// path "query.cursor".
func (k *CursorCodec) ParseList(list, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	bad := &Error{Code: EInvalid, Title: "Invalid cursor", Message: "the cursor was not issued by this list",
		Errors: []FieldError{{Path: "query.cursor", Message: "must be a cursor this list returned"}}}
	p, sig, ok := strings.Cut(s, ".")
	if !ok || len(s) > 256 || !hmac.Equal([]byte(sig), []byte(k.mac(p))) {
		return 0, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(p)
	rest, found := strings.CutPrefix(string(b), listPrefix+list+".")
	if err != nil || !found {
		return 0, bad
	}
	pos, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || pos < 0 || strconv.FormatInt(pos, 10) != rest {
		return 0, bad
	}
	return pos, nil
}

func cursorText(c Cursor) string {
	s := cursorPrefix + strconv.FormatInt(c.Seq, 10)
	if c.Scope != "" || c.Transition > 0 {
		s += "." + c.Scope
	}
	if c.Transition > 0 {
		s += "." + strconv.FormatInt(c.Transition, 10)
	}
	return s
}

// parseCursorText reads the base64 payload of a cursor; any error means
// the cursor is invalid.
func parseCursorText(s string) (Cursor, error) {
	bad := &Error{Code: EInvalid}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return Cursor{}, bad
	}
	parts := strings.Split(strings.TrimPrefix(string(b), cursorPrefix), ".")
	if len(parts) > 3 {
		return Cursor{}, bad
	}
	var c Cursor
	if c.Seq, err = strconv.ParseInt(parts[0], 10, 64); err != nil || c.Seq < 0 {
		return Cursor{}, bad
	}
	if len(parts) > 1 {
		c.Scope = parts[1]
		if c.Scope != "*" && c.Scope != "" {
			for _, p := range strings.Split(c.Scope, ",") {
				if !schema.IsDigits(p) || len(p) > 12 {
					return Cursor{}, bad
				}
			}
		}
	}
	if len(parts) > 2 {
		if c.Transition, err = strconv.ParseInt(parts[2], 10, 64); err != nil || c.Transition <= 0 {
			return Cursor{}, bad
		}
	}
	if base64.RawURLEncoding.EncodeToString([]byte(cursorText(c))) != s {
		return Cursor{}, bad
	}
	return c, nil
}
