package api

import (
	"encoding/json"

	"github.com/fieldsync/fieldsync/syncproto"
)

// resolutionValue is the value a resolution request decides for: value as
// sent, or the conflict's own value that choose names. Exactly one of the
// two must be given; every error names the member at fault. The names of
// choose are those the conflict JSON gives its values, so that a
// supervisor answers with what they read.
func resolutionValue(cf *syncproto.ConflictEntry, value json.RawMessage, choose string) (json.RawMessage, error) {
	invalid := func(path, msg string) error {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid resolution",
			Message: `send {"value": ...} or {"choose": "kept" | "stored" | "incoming"}, with a "note"`,
			Errors:  []syncproto.FieldError{{Path: path, Message: msg}}}
	}
	switch {
	case choose == "" && len(value) == 0:
		return nil, invalid("value", `is required (or "choose": "kept", "stored" or "incoming")`)
	case choose == "":
		return value, nil
	case len(value) > 0:
		return nil, invalid("choose", `must not be sent with "value": give one of the two`)
	}
	switch choose {
	case "kept":
		return cf.Kept, nil
	case "stored":
		return cf.Stored, nil
	case "incoming":
		return cf.Incoming, nil
	}
	return nil, invalid("choose", `must be one of "kept" (the value the record holds), "stored" (the value it held before the change) or "incoming" (the value the change sent)`)
}
