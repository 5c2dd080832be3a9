package api

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type          string                 `json:"type"`
	Title         string                 `json:"title"`
	Status        int                    `json:"status"`
	Detail        string                 `json:"detail,omitempty"`
	Instance      string                 `json:"instance,omitempty"`
	Errors        []syncproto.FieldError `json:"errors,omitempty"`
	LastDeviceSeq *int64                 `json:"last_device_seq,omitempty"`
	UploadOffset  *int64                 `json:"upload_offset,omitempty"`
}

var statusOf = map[syncproto.Code]int{
	syncproto.EMalformed:       http.StatusBadRequest,
	syncproto.EUnauthorized:    http.StatusUnauthorized,
	syncproto.ERevoked:         http.StatusUnauthorized,
	syncproto.EAccountDisabled: http.StatusUnauthorized,
	syncproto.ESessionEnded:    http.StatusUnauthorized,
	syncproto.EForbidden:       http.StatusForbidden,
	syncproto.ENotFound:        http.StatusNotFound,
	syncproto.EConflict:        http.StatusConflict,
	syncproto.ETooLarge:        http.StatusRequestEntityTooLarge,
	syncproto.EInvalid:         http.StatusUnprocessableEntity,
	syncproto.EUnsupported:     http.StatusUnsupportedMediaType,
	syncproto.ERateLimited:     http.StatusTooManyRequests,
	syncproto.EUnavailable:     http.StatusServiceUnavailable,
	syncproto.EInternal:        http.StatusInternalServerError,

	syncproto.EInsufficientStorage: http.StatusInsufficientStorage,
}

var defaultTitle = map[syncproto.Code]string{
	syncproto.EMalformed:       "Malformed request",
	syncproto.EUnauthorized:    "Unauthorized",
	syncproto.ERevoked:         "Device revoked",
	syncproto.EAccountDisabled: "Account disabled",
	syncproto.ESessionEnded:    "Session ended",
	syncproto.EForbidden:       "Forbidden",
	syncproto.ENotFound:        "Not found",
	syncproto.EConflict:        "Conflict",
	syncproto.ETooLarge:        "Request too large",
	syncproto.EInvalid:         "Invalid request",
	syncproto.EUnsupported:     "Unsupported media type",
	syncproto.ERateLimited:     "Too many requests",
	syncproto.EUnavailable:     "Unavailable",
	syncproto.EInternal:        "Internal error",

	syncproto.EInsufficientStorage: "Insufficient storage",
}

// problemFor maps any error to a problem document: a *syncproto.Error by its
// code, an echo error by its status, anything else to a 500 whose detail is
// never shown.
func problemFor(err error) Problem {
	var se *syncproto.Error
	if errors.As(err, &se) {
		title := se.Title
		if title == "" {
			title = defaultTitle[se.Code]
		}
		status := statusOf[se.Code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return Problem{Type: "/problems/" + string(se.Code), Title: title, Status: status, Detail: se.Message,
			Errors: se.Errors, LastDeviceSeq: se.LastDeviceSeq, UploadOffset: se.PhotoBytesHeld}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		p := Problem{Status: he.Code, Title: http.StatusText(he.Code)}
		switch he.Code {
		case http.StatusNotFound:
			p.Type, p.Detail = "/problems/not_found", "no such resource"
		case http.StatusMethodNotAllowed:
			p.Type, p.Detail = "/problems/method_not_allowed", "this method is not allowed on this resource"
		case http.StatusRequestEntityTooLarge:
			p.Type, p.Detail = "/problems/too_large", "the request body is too large"
		case http.StatusUnsupportedMediaType:
			p.Type, p.Detail = "/problems/unsupported_media_type", "send application/json"
		default:
			if he.Code >= 500 {
				return Problem{Type: "/problems/internal", Title: "Internal error", Status: http.StatusInternalServerError,
					Detail: "an internal error occurred; it has been logged"}
			}
			p.Type = "/problems/http_" + strconv.Itoa(he.Code)
			if m, ok := he.Message.(string); ok {
				p.Detail = m
			}
		}
		return p
	}
	return Problem{Type: "/problems/internal", Title: "Internal error", Status: http.StatusInternalServerError,
		Detail: "an internal error occurred; it has been logged"}
}

// errorHandler is echo's single error handler: it logs what the client does
// not see and answers application/problem+json.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := problemFor(err)
	p.Instance = c.Request().URL.Path
	if p.Status >= 500 {
		s.reqLog(c).Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
	}
	var se *syncproto.Error
	if errors.As(err, &se) && se.RetryIn > 0 {
		c.Response().Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(se.RetryIn.Seconds())), 10)) // whole seconds, rounded up
	}
	if p.UploadOffset != nil {
		c.Response().Header().Set(headerUploadOffset, strconv.FormatInt(*p.UploadOffset, 10))
	}
	if p.Status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="fieldsync", error="invalid_token"`)
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method == http.MethodHead {
		return
	}
	if err := jsonEncode(c.Response(), p); err != nil {
		s.reqLog(c).Debug("writing problem", slog.Any("err", err))
	}
}

// inQuery puts the field errors of a request's parameters (export's, named
// by the parameter) under query., where the API's problems name them.
func inQuery(err error) error {
	var se *syncproto.Error
	if errors.As(err, &se) {
		for i := range se.Errors {
			se.Errors[i].Path = "query." + se.Errors[i].Path
		}
	}
	return err
}
