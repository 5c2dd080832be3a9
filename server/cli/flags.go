package cli

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// reinspectAfterFlag is the value of serve's --reinspect-after flag: a
// number of days ("365d") or a Go duration ("8760h"), greater than zero.
type reinspectAfterFlag struct{ d *time.Duration }

func (f reinspectAfterFlag) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*f.d/(24*time.Hour)), 10) + "d"
	}
	return f.d.String()
}

func (f reinspectAfterFlag) Set(v string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100*366 {
			return errors.New("must be a number of days such as 365d, or a duration such as 8760h")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return errors.New("must be a number of days such as 365d, or a duration such as 8760h")
		}
	}
	if d <= 0 {
		return errors.New("must be greater than zero")
	}
	*f.d = d
	return nil
}
