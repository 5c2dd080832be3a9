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
	// Device is the device the cursor was issued to (pull and checksum
	// bind their cursors to the caller's device); empty for a cursor that
	// names only a position (a snapshot's, a history entry's, a report's)
	// or one issued before cursors were bound. ParsePull accepts a bound
	// cursor from its device only.
	Device string
	// JudgedAsOf, on the answer of a read of a store's kept coverage
	// summaries (SummaryStore), is the day ("YYYY-MM-DD", UTC) their sums
	// are judged as of: the read's day, or an earlier one while they are
	// being judged again under a standard's edition that took effect
	// since (SummaryStore.RejudgeSummaries). Empty for figures read from
	// the records and for every other cursor; never encoded.
	JudgedAsOf string
}

const (
	cursorPrefix      = "fs1."
	boundCursorPrefix = "fs2."
)

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

// ParsePull reads a cursor sent to pull by actor: a cursor Parse accepts,
// and one that actor may continue from. A cursor bound to a device is
// accepted from that device only. An unbound one (issued before cursors
// were bound, or a snapshot's or history entry's position) is accepted when
// it names no scope or the actor's current scope: continuing from it
// reveals nothing the actor cannot read, whereas a cursor of another scope
// would start a transition that lists that scope's records as removals.
// Any other is an EInvalid error with the path "cursor" that says nothing
// of the cursor's origin; the tablet then pulls from the beginning.
func (k *CursorCodec) ParsePull(s string, actor Actor) (Cursor, error) {
	c, err := k.Parse(s)
	if err != nil {
		return Cursor{}, err
	}
	var ok bool
	if c.Device != "" {
		ok = c.Device == actor.DeviceID
	} else {
		ok = c.Scope == "" || c.Scope == actor.ScopeKey() || (c.Seq == 0 && c.Transition == 0)
	}
	if !ok {
		return Cursor{}, &Error{Code: EInvalid, Title: "Invalid cursor",
			Message: "the cursor was not issued to this device; pull again from the beginning",
			Errors:  []FieldError{{Path: "cursor", Message: "was not issued to this device"}}}
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
	s := cursorPrefix
	if c.Device != "" {
		s = boundCursorPrefix + c.Device + "."
	}
	s += strconv.FormatInt(c.Seq, 10)
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
	if err != nil {
		return Cursor{}, bad
	}
	var c Cursor
	text, unbound := strings.CutPrefix(string(b), cursorPrefix)
	if !unbound {
		var bound bool
		if text, bound = strings.CutPrefix(string(b), boundCursorPrefix); !bound {
			return Cursor{}, bad
		}
		if c.Device, text, _ = strings.Cut(text, "."); !validCursorDevice(c.Device) {
			return Cursor{}, bad
		}
	}
	parts := strings.Split(text, ".")
	if len(parts) > 3 {
		return Cursor{}, bad
	}
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

// validCursorDevice reports whether s can be a device id in a cursor (the
// login accepts UUIDs only; a cursor is signed, so this only keeps the
// text unambiguous).
func validCursorDevice(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}
