package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if !VerifyPassword(h, "correct horse battery") || VerifyPassword(h, "correct horse batterY") {
		t.Fatal("verify")
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("no salt")
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=0,t=2,p=1$AA$AA", "$bcrypt$x$y$z$w"} {
		if VerifyPassword(bad, "x") {
			t.Fatalf("malformed hash %q matched", bad)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Fatal("short password accepted")
	}
}

// TestUnknownUserCostsAHash: the dummy hash used for unknown users must
// parse, or an unknown name would answer faster than a wrong password.
func TestUnknownUserCostsAHash(t *testing.T) {
	parts := strings.Split(dummyHash, "$")
	if len(parts) != 6 {
		t.Fatal("dummy hash malformed")
	}
	start := time.Now()
	VerifyPassword("", "anything")
	if time.Since(start) < time.Millisecond {
		t.Fatal("verifying against the dummy hash did no work")
	}
}

func TestCheckUser(t *testing.T) {
	ok := [][3]string{{"li.na", "field_worker", "500240"}, {"admin", "admin", ""}, {"s-1", "supervisor", "15,50"}}
	for _, c := range ok {
		if err := CheckUser(c[0], c[1], split(c[2])); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	bad := [][3]string{{"", "admin", ""}, {"a b", "admin", ""}, {"x", "root", ""}, {"x", "field_worker", ""},
		{"x", "supervisor", "5"}, {"x", "supervisor", "50a"}, {"x", "supervisor", "5002401072011"}}
	for _, c := range bad {
		if err := CheckUser(c[0], c[1], split(c[2])); err == nil {
			t.Errorf("%v accepted", c)
		}
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func TestKeyringFilesAndRotation(t *testing.T) {
	dir := t.TempDir()
	k, err := OpenKeyring(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := k.Current()
	fi, err := os.Stat(filepath.Join(dir, "keys", first+".pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	for i := 0; i < 4; i++ {
		if _, err := RotateKey(dir); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if len(names) != KeepKeys {
		t.Fatalf("%d keys kept, want %d", len(names), KeepKeys)
	}
	if err := os.Chmod(names[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyring(dir, nil); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable key was loaded: %v", err)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(time.Hour, 2)
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("refused within burst")
		}
	}
	ok, retry := l.Allow("a")
	if ok || retry < 3000 {
		t.Fatalf("allowed beyond burst, or retry %d", retry)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("keys share a bucket")
	}
	var none *Limiter
	if ok, _ := none.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}
