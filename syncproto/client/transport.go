package client

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// maxResponse bounds what the client reads of one response.
const maxResponse = 64 << 20

// send makes one request and decodes a 2xx JSON answer into out; any
// other answer is a *Problem (a transport failure is returned as it is).
func (c *Client) send(ctx context.Context, server, method, path, token string, body []byte, out any) error {
	var hdr http.Header
	if body != nil {
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	_, _, b, err := c.sendRaw(ctx, server, method, path, token, hdr, body)
	return decodeAnswer(method, path, b, err, out)
}

// decodeAnswer decodes a 2xx JSON answer into out (when out is not nil).
func decodeAnswer(method, path string, b []byte, err error, out any) error {
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		// A cut or garbled answer: like a lost one, worth a retry.
		return &transient{fmt.Errorf("client: reading the answer to %s %s: %w", method, path, err)}
	}
	return nil
}

// sendRaw makes one request with the given headers and body and returns
// the answer's status, headers and body; a non-2xx answer is a *Problem.
func (c *Client) sendRaw(ctx context.Context, server, method, path, token string, hdr http.Header, body []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, server+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, err
	}
	if resp.StatusCode/100 != 2 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		_ = json.Unmarshal(b, p)
		p.Status = resp.StatusCode
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			p.RetryAfter = time.Duration(s) * time.Second
		}
		if p.UploadOffset == nil {
			if n, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64); err == nil {
				p.UploadOffset = &n
			}
		}
		return resp.StatusCode, resp.Header, b, p
	}
	return resp.StatusCode, resp.Header, b, nil
}

// transient marks an error worth retrying that is not a network error.
type transient struct{ err error }

func (t *transient) Error() string { return t.err.Error() }
func (t *transient) Unwrap() error { return t.err }

// call makes an authenticated JSON request: on a 401 it refreshes the
// tokens once and tries again.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	var hdr http.Header
	if body != nil {
		hdr = http.Header{"Content-Type": {"application/json"}}
	}
	_, _, b, err := c.callRaw(ctx, method, path, hdr, body)
	return decodeAnswer(method, path, b, err, out)
}

// callRaw is call with any headers and body, returning the answer's status,
// headers and body.
func (c *Client) callRaw(ctx context.Context, method, path string, hdr http.Header, body []byte) (int, http.Header, []byte, error) {
	server, err := c.server(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	token, err := c.meta(ctx, c.db, "access_token")
	if err != nil {
		return 0, nil, nil, err
	}
	if token == "" {
		return 0, nil, nil, ErrLoginRequired
	}
	status, h, b, err := c.sendRaw(ctx, server, method, path, token, hdr, body)
	if !unauthorized(err) {
		return status, h, b, err
	}
	// A refresh cannot help a revoked tablet or a disabled account.
	if f := authFailure(err); errors.Is(f, ErrDeviceRevoked) || errors.Is(f, ErrAccountDisabled) {
		return status, h, b, f
	}
	if token, err = c.refresh(ctx, server); err != nil {
		return status, h, b, err
	}
	status, h, b, err = c.sendRaw(ctx, server, method, path, token, hdr, body)
	return status, h, b, authFailure(err)
}

func unauthorized(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusUnauthorized
}

// The problem types of the 401s that are not "log in again": the server
// names a problem "/problems/" and its syncproto code.
const (
	problemDeviceRevoked   = "/problems/" + string(syncproto.ERevoked)
	problemAccountDisabled = "/problems/" + string(syncproto.EAccountDisabled)
)

// authFailure turns a 401 into ErrDeviceRevoked, ErrAccountDisabled or
// ErrLoginRequired (the tokens no longer serve); any other error stays as
// it is.
func authFailure(err error) error {
	var p *Problem
	switch {
	case !errors.As(err, &p) || p.Status != http.StatusUnauthorized:
		return err
	case p.Type == problemDeviceRevoked:
		return ErrDeviceRevoked
	case p.Type == problemAccountDisabled:
		return ErrAccountDisabled
	default:
		return ErrLoginRequired
	}
}

// refresh trades the refresh token for a new pair (retrying transient
// failures: the server accepts the same token once more shortly after a
// rotation whose answer was lost) and keeps it.
func (c *Client) refresh(ctx context.Context, server string) (string, error) {
	rt, err := c.meta(ctx, c.db, "refresh_token")
	if err != nil {
		return "", err
	}
	if rt == "" {
		return "", ErrLoginRequired
	}
	body, _ := json.Marshal(map[string]string{"refresh_token": rt})
	var tok tokenPair
	err = c.retry(ctx, func(ctx context.Context) error {
		return c.send(ctx, server, http.MethodPost, "/v1/auth/refresh", "", body, &tok)
	})
	if err != nil {
		return "", authFailure(err)
	}
	err = c.tx(ctx, func(tx *sql.Tx) error {
		if err := setMeta(ctx, tx, "access_token", tok.AccessToken); err != nil {
			return err
		}
		return setMeta(ctx, tx, "refresh_token", tok.RefreshToken)
	})
	return tok.AccessToken, err
}

// retryable reports whether a failed attempt is worth repeating: a network
// error or timeout, a garbled answer, 408, 429 or a 5xx.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var p *Problem
	if errors.As(err, &p) {
		return p.Status == http.StatusRequestTimeout || p.Status == http.StatusTooManyRequests || p.Status >= 500
	}
	if errors.Is(err, ErrLoginRequired) || errors.Is(err, ErrDeviceRevoked) || errors.Is(err, ErrAccountDisabled) {
		return false
	}
	return true // the request or its answer was lost on the way
}

// retry runs attempt until it succeeds, fails for good, or ctx ends,
// waiting between attempts with exponential backoff and full jitter (and
// at least what a Retry-After asked).
func (c *Client) retry(ctx context.Context, attempt func(context.Context) error) error {
	for n := 0; ; n++ {
		err := attempt(ctx)
		if err == nil || !retryable(ctx, err) {
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return err
		}
		if werr := c.wait(ctx, n, err); werr != nil {
			return werr
		}
	}
}

// wait sleeps before retry n+1 after err, or returns when ctx ends.
func (c *Client) wait(ctx context.Context, n int, err error) error {
	wait := c.backoff(n)
	var p *Problem
	if errors.As(err, &p) && p.RetryAfter > wait {
		wait = p.RetryAfter
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
	case <-t.C:
		return nil
	}
}

// backoff is the wait before retry n+1: uniform in [min, min·2^n], capped.
func (c *Client) backoff(n int) time.Duration {
	ceil := c.opts.MinBackoff << min(n, 20)
	if ceil > c.opts.MaxBackoff || ceil <= 0 {
		ceil = c.opts.MaxBackoff
	}
	return c.opts.MinBackoff + time.Duration(rand.Int64N(int64(ceil-c.opts.MinBackoff)+1))
}
