package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings, and mutations of a valid token, to
// the token verifier: it must never panic, and must accept nothing but
// tokens this keyring signed.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	k, err := OpenKeyring(dir, func() time.Time { return time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC) })
	if err != nil {
		f.Fatal(err)
	}
	valid, err := k.Sign(NewClaims("li.na", "field_worker", []string{"500240"}, "0193a000-0000-7000-8000-00000000000a",
		"0193a000-0000-7000-8000-0000000000aa", time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)))
	if err != nil {
		f.Fatal(err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "x"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	f.Add(valid)
	f.Add(none)
	f.Add("")
	f.Add("a.b.c")
	f.Add(strings.Repeat("eyJ", 1000))
	f.Fuzz(func(t *testing.T, token string) {
		c, err := k.Verify(token)
		if err != nil {
			return
		}
		if token != valid {
			// A different string can only verify if it decodes to the same
			// signed content (base64 padding variants are refused by the
			// parser), so anything else accepted is a forgery.
			t.Fatalf("accepted a token that was not issued: %q (%+v)", token, c)
		}
	})
}
