package api

import (
	"unicode"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/syncproto"
)

// maxDeviceName is the longest device_name, in characters, a login may
// give a tablet.
const maxDeviceName = 64

// checkDeviceName refuses a device_name of a login that is longer than
// maxDeviceName characters, not UTF-8, or holds control characters (path
// device_name). The empty name is no name. A name may name a person (张三的平板),
// so it is shown to supervisors and never logged.
func checkDeviceName(name string) []syncproto.FieldError {
	if name == "" {
		return nil
	}
	bad := !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxDeviceName
	for _, r := range name {
		bad = bad || unicode.IsControl(r)
	}
	if bad {
		return []syncproto.FieldError{{Path: "device_name", Message: "must be 1 to 64 characters without control characters"}}
	}
	return nil
}
