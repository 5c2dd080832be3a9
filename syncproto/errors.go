package syncproto

import (
	"errors"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// Code classifies an Error; the HTTP adapter maps each code to one status.
type Code string

// The error codes of fieldsync.
const (
	EMalformed    Code = "malformed"      // 400: not JSON, wrong types
	EUnauthorized Code = "unauthorized"   // 401
	ERevoked      Code = "device_revoked" // 401: this tablet was revoked; logging in again will not help
	// EAccountDisabled (401): the user is disabled; logging in again will
	// not help until an admin enables them (and then a login is needed:
	// disabling ended every session for good).
	EAccountDisabled Code = "account_disabled"
	// ESessionEnded (401): the session was ended (a new password, a
	// disabled and re-enabled user, a reused refresh token, 30 days
	// without a sync); logging in again helps.
	ESessionEnded Code = "session_ended"
	EForbidden    Code = "forbidden"    // 403
	ENotFound     Code = "not_found"    // 404
	EConflict     Code = "conflict"     // 409: replayed id with other content, stale device_seq
	ETooLarge     Code = "too_large"    // 413
	EInvalid      Code = "invalid"      // 422: semantically invalid
	EUnsupported  Code = "unsupported"  // 415: a body of a type the server does not take (a photo that is no image)
	ERateLimited  Code = "rate_limited" // 429
	EUnavailable  Code = "unavailable"  // 503: not ready, storage full, database busy, too many snapshots
	EInternal     Code = "internal"     // 500: never shown in detail

	// EInsufficientStorage (507): the server keeps its last free disk space
	// for pushes and stores no more photos for now.
	EInsufficientStorage Code = "insufficient_storage"
)

// FieldError is a validation failure with the path of the offending value.
type FieldError = schema.FieldError

// Error is the one error type of fieldsync. Its Message is safe to show to
// a client; Errors carries per-field failures with their paths.
type Error struct {
	Code    Code
	Title   string
	Message string
	Errors  []FieldError
	// LastDeviceSeq is set on an out-of-order device_seq: the last sequence
	// the server accepted from that device.
	LastDeviceSeq *int64
	// PhotoBytesHeld is set on the errors of a photo upload: how many
	// bytes of the photo the server holds for the uploader, where the
	// upload resumes.
	PhotoBytesHeld *int64
	// RetryIn is set on ERateLimited, EInsufficientStorage and on
	// EUnavailable when waiting helps (a full disk, a busy database): how
	// long to wait before trying again.
	RetryIn time.Duration
}

func (e *Error) Error() string {
	if len(e.Errors) > 0 {
		return fmt.Sprintf("%s: %s (%s: %s)", e.Code, e.Message, e.Errors[0].Path, e.Errors[0].Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an Error with the given code and a formatted safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and
// EInternal otherwise.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
