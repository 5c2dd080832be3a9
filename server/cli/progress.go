package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressUnit is what a progress counts.
type progressUnit int

const (
	progressBytes progressUnit = iota
	progressChanges
	progressHouseholds
	progressRecords
	progressRows
)

func (u progressUnit) String() string {
	return [...]string{"bytes", "changes", "households", "records", "rows"}[u]
}

// progressLineEvery is how many items pass between two plain progress
// lines when the total is not known.
const progressLineEvery = 10_000

// progress shows how far long work is (seed, generate, backup, restore,
// export): a progress bar when w is a terminal, and otherwise (a log, CI, a
// cron mail) a plain line at every tenth of the total, or every 10,000
// items when the total is unknown. It writes to standard error, so that
// standard output keeps only the result.
type progress struct {
	w        io.Writer
	what     string
	unit     progressUnit
	tty      bool
	bar      *progressbar.ProgressBar
	total    int64
	done     int64
	reported int64 // the tenth (or the 10,000) last reported as a line
	lined    int64 // the count of the last line written
	started  time.Time
}

func newProgress(w io.Writer, what string, unit progressUnit) *progress {
	p := &progress{w: w, what: what, unit: unit, tty: isTerminal(w), reported: -1, lined: -1, started: time.Now()}
	if p.tty {
		// Made now, so that its rate counts from the start of the work.
		p.bar = p.newBar()
	}
	return p
}

// set reports that done of total items are done; total ≤ 0 means unknown.
// The total may change (a database grows while it is copied).
func (p *progress) set(done, total int64) {
	p.done = done
	if p.tty {
		if total > 0 && p.bar.GetMax64() != total {
			p.bar.ChangeMax64(total)
		}
		_ = p.bar.Set64(done)
		p.total = total
		return
	}
	p.total = total
	var mark int64
	if total > 0 {
		mark = 10 * done / total
	} else {
		mark = done / progressLineEvery
	}
	if mark > p.reported {
		p.reported = mark
		p.line()
	}
}

// newBar makes the bar, of unknown length (a spinner with a count) until
// set gives it a total.
func (p *progress) newBar() *progressbar.ProgressBar {
	opts := []progressbar.Option{progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription(p.what),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) })}
	if p.unit == progressBytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionShowTotalBytes(true))
	} else {
		opts = append(opts, progressbar.OptionSetItsString(p.unit.String()))
	}
	return progressbar.NewOptions64(-1, opts...)
}

func (p *progress) line() {
	p.lined = p.done
	rate := ""
	if secs := time.Since(p.started).Seconds(); secs > 0.5 && p.unit != progressBytes {
		rate = fmt.Sprintf(", %.0f/s", float64(p.done)/secs)
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s: %s of %s (%d%%%s)\n", p.what, p.count(p.done), p.count(p.total), 100*p.done/p.total, rate)
		return
	}
	fmt.Fprintf(p.w, "%s: %s%s\n", p.what, p.count(p.done), rate)
}

func (p *progress) count(n int64) string {
	if p.unit == progressBytes {
		return byteSize(n)
	}
	return fmt.Sprintf("%d %s", n, p.unit)
}

// finish ends the bar (or writes the last line when the last tenth was not
// reached as such).
func (p *progress) finish() {
	if p.tty {
		if !p.bar.IsFinished() {
			if p.total > 0 && p.done < p.total { // stopped short: leave the bar where it stopped
				_ = p.bar.Exit()
				fmt.Fprintln(p.w)
			} else {
				_ = p.bar.Finish()
			}
		}
		return
	}
	if p.total > 0 && p.done >= p.total && p.reported >= 10 {
		return
	}
	if p.done > 0 && p.lined != p.done {
		p.line()
	}
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r     io.Reader
	p     *progress
	n     int64
	total int64
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	r.p.set(r.n, r.total)
	return n, err
}
