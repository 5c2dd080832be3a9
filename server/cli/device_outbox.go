package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
	"github.com/fieldsync/fieldsync/syncproto/client"
)

const deviceOutboxAbout = `export: write this tablet's pending edits (its outbox, as change sets with their
changeset_id and device_seq) and the photos they reference that never reached
the server to FILE, a JSON file (docs/protocol.md, "Exported outbox"). Works
offline and on a revoked tablet; needs no token. The edits stay on the tablet.

replay: from a supervisor's signed-in tablet, send such a FILE of a revoked
tablet to the server, which applies it as that tablet (its history keeps naming
it, and says who replayed it). Prints what became of each change set; a file
sent twice applies nothing new.`

// runDeviceOutbox is 'fieldsync device outbox export|replay'.
func runDeviceOutbox(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 || helpAsked(args[:1]) || args[0] == "help" {
		// The flags of both subcommands, for the help.
		fs, _ := deviceFlags(env, "outbox")
		fs.String("out", "", "export: the file to write (not overwritten unless --force)")
		fs.Bool("force", false, "export: overwrite --out if it exists")
		fs.Duration("timeout", 2*time.Minute, "replay: give up after this long (the server is retried meanwhile)")
		fs.SetOutput(env.Stdout)
		fs.Usage()
		if len(args) == 0 {
			return ErrUsage
		}
		return nil
	}
	switch args[0] {
	case "export":
		return runOutboxExport(ctx, env, args[1:])
	case "replay":
		return runOutboxReplay(ctx, env, args[1:])
	}
	fmt.Fprintf(env.Stderr, "fieldsync device outbox: unknown command %q: use export or replay\n", args[0])
	return ErrUsage
}

func runOutboxExport(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "outbox")
	out := fs.String("out", "", "the file to write (not overwritten unless --force)")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	if *out == "" {
		return errors.New("give the file to write with --out")
	}
	if _, err := os.Stat(*out); err == nil && !*force {
		return fmt.Errorf("%s exists: give another --out, or --force to overwrite it", *out)
	}
	if st, err := os.Stat(filepath.Dir(*out)); err != nil || !st.IsDir() {
		return fmt.Errorf("the directory of --out, %s, does not exist", filepath.Dir(*out))
	}
	f, err := c.ExportOutbox(ctx)
	if errors.Is(err, client.ErrNothingPending) {
		fmt.Fprintln(env.Stdout, "no pending edits on this tablet: nothing exported")
		return nil
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	if err := writeFileDurably(*out, append(b, '\n')); err != nil {
		return err
	}
	changes := 0
	for _, raw := range f.Changesets {
		var cs struct {
			Changes []json.RawMessage `json:"changes"`
		}
		_ = json.Unmarshal(raw, &cs)
		changes += len(cs.Changes)
	}
	fmt.Fprintf(env.Stdout, "exported %d change sets (%d changes) of device %s (user %s) to %s, with %d photos\n",
		len(f.Changesets), changes, f.DeviceID, f.User, *out, len(f.Photos))
	for _, m := range f.PhotosMissing {
		fmt.Fprintf(env.Stdout, "photo %s not included: %s\n", m.SHA256, m.Reason)
	}
	fmt.Fprintln(env.Stdout, "a supervisor replays it with 'fieldsync device outbox replay --dir SUPERVISOR-TABLET FILE' once this tablet is revoked")
	return nil
}

// writeFileDurably writes path through a temporary file, fsynced and
// renamed, readable by its owner only (it holds personal data).
func writeFileDurably(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}

func runOutboxReplay(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "outbox")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long (the server is retried meanwhile)")
	if err := fs.Parse(args); err != nil || helpAsked(args) {
		if helpAsked(args) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() != 1 {
		return errors.New("give one exported outbox file")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var f syncproto.OutboxFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("%s is not an exported outbox (not valid JSON: %v)", fs.Arg(0), err)
	}
	if f.Format != syncproto.OutboxFormat {
		return fmt.Errorf("%s is not an exported outbox (its format is %q, not %q)", fs.Arg(0), f.Format, syncproto.OutboxFormat)
	}
	if f.Version != syncproto.OutboxVersion {
		return fmt.Errorf("%s is version %d of the outbox format; this fieldsync reads version %d", fs.Arg(0), f.Version, syncproto.OutboxVersion)
	}
	c, err := openDevice(*dir, false)
	if err != nil {
		return err
	}
	defer c.Close()
	if f.DeviceID == c.DeviceID() {
		return errors.New("this file is this tablet's own outbox: a revoked tablet's outbox is replayed from another, a supervisor's, tablet")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := c.ReplayOutbox(ctx, &f)
	var p *client.Problem
	if errors.As(err, &p) {
		msg := fmt.Sprintf("the server refused the outbox: %s", p.Detail)
		for _, e := range p.Errors {
			msg += fmt.Sprintf("\n  %s: %s", e.Path, e.Message)
		}
		return errors.New(msg)
	}
	if err != nil {
		return deviceError(*dir, err)
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE_SEQ\tCHANGESET\tSTATUS\tCHANGES")
	refused := 0
	for _, s := range rep.Sets {
		detail := ""
		switch s.Status {
		case "replayed":
			detail = "already on the server: nothing applied again"
		case "refused":
			refused++
			if s.Problem != nil {
				detail = s.Problem.Error()
			}
		default:
			counts := map[string]int{}
			for _, r := range s.Results {
				counts[r.Status]++
			}
			var parts []string
			for _, st := range []string{"applied", "merged", "conflict", "rejected"} {
				if counts[st] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
				}
			}
			detail = strings.Join(parts, ", ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.DeviceSeq, s.ChangesetID, s.Status, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%d photos uploaded\n", rep.PhotosUploaded)
	if rep.PhotosWaiting > 0 {
		fmt.Fprintf(env.Stdout, "%d photos wait on this device (server: %s); the change sets were replayed, and a later sync of this device sends them\n", rep.PhotosWaiting, rep.PhotosWaitReason)
	}
	for _, m := range rep.PhotosMissing {
		fmt.Fprintf(env.Stdout, "photo %s was not in the file: %s\n", m.SHA256, m.Reason)
	}
	if refused > 0 {
		return fmt.Errorf("%d change sets refused (see above); nothing of them was applied", refused)
	}
	return nil
}
