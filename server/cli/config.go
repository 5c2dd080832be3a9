package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// envPrefix starts the name of every environment variable of serve: the
// flag --busy-timeout is FIELDSYNC_BUSY_TIMEOUT.
const envPrefix = "FIELDSYNC_"

// configFlag names the flag (and FIELDSYNC_CONFIG the variable) that
// points at the optional configuration file.
const configFlag = "config"

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// settingSource says where a setting's value came from.
type settingSource string

const (
	fromDefault settingSource = "default"
	fromFlag    settingSource = "flag"
	fromEnv     settingSource = "env"
	fromFile    settingSource = "file"
)

// applySettings completes a parsed flag set from the environment and an
// optional configuration file, in that order of precedence: a flag given
// on the command line wins over FIELDSYNC_<FLAG>, which wins over the key
// of the same name in the file (--config FILE, or FIELDSYNC_CONFIG), which
// wins over the default. An empty variable counts as unset. Every invalid
// value is reported with where it came from; an unknown key in the file is
// an error, so that a misspelt setting does not silently keep its default.
// It returns where each setting came from, and the file read ("" for none).
func applySettings(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) (map[string]settingSource, string, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	env := func(name string) (string, bool) {
		v, ok := lookupEnv(envName(name))
		return v, ok && v != ""
	}
	sources := map[string]settingSource{}
	fs.VisitAll(func(f *flag.Flag) { sources[f.Name] = fromDefault })
	fs.Visit(func(f *flag.Flag) { sources[f.Name] = fromFlag })

	path := ""
	if f := fs.Lookup(configFlag); f != nil {
		path = f.Value.String()
		if v, ok := env(configFlag); ok && sources[configFlag] != fromFlag {
			path = v
			sources[configFlag] = fromEnv
		}
	}
	file, err := readConfigFile(path, fs)
	if err != nil {
		return nil, "", err
	}

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag || sources[f.Name] == fromFlag {
			return
		}
		if v, ok := env(f.Name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (--%s): %s", envName(f.Name), v, f.Name, setError(f, err)))
			}
			sources[f.Name] = fromEnv
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s = %q: %s", path, f.Name, v, setError(f, err)))
			}
			sources[f.Name] = fromFile
		}
	})
	return sources, path, errors.Join(errs...)
}

// setError says what a flag's value must be: the flag package answers
// only "parse error" for a bad number or duration.
func setError(f *flag.Flag, err error) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case time.Duration:
		return "must be a duration such as 30s, 2m or 1h30m"
	case int, int64, uint, uint64:
		return "must be a whole number"
	case float64:
		return "must be a number"
	case bool:
		return "must be true or false"
	}
	return err.Error()
}

// readConfigFile reads a TOML file of settings: each key is a flag's name
// and each value a string, number or boolean, written as on the command
// line (durations as strings: busy-timeout = "10s"). No file ("") is no
// settings. A key that is no flag, the config key itself, a table or an
// array is an error naming the key.
func readConfigFile(path string, fs *flag.FlagSet) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	raw := map[string]any{}
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist", path)
		}
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]string{}
	var errs []error
	for _, k := range keys {
		if k == configFlag || fs.Lookup(k) == nil {
			errs = append(errs, fmt.Errorf("config file %s: unknown key %q (the keys are the flags of fieldsync serve --help, without the dashes)", path, k))
			continue
		}
		switch v := raw[k].(type) {
		case string:
			out[k] = v
		case int64:
			out[k] = strconv.FormatInt(v, 10)
		case float64:
			out[k] = strconv.FormatFloat(v, 'g', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			errs = append(errs, fmt.Errorf("config file %s: %s must be a string, a number or true/false, not %T", path, k, v))
		}
	}
	return out, errors.Join(errs...)
}

// checkListenAddr refuses an address net.Listen would refuse, before
// anything is created: HOST:PORT with a port from 0 to 65535 (HOST may be
// empty for every interface).
func checkListenAddr(flagName, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("port out of range")
		}
		if err == nil && strings.ContainsAny(host, " /") {
			err = errors.New("bad host")
		}
	}
	if err != nil {
		return fmt.Errorf("--%s must be HOST:PORT such as 127.0.0.1:8080 or :8080, not %q", flagName, addr)
	}
	return nil
}

// printSettings writes a flag set's settings for --help: each flag with
// its argument, what it does, its default and, when withEnv, its
// environment variable.
func printSettings(w io.Writer, fs *flag.FlagSet, withEnv bool) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(w, "  --%s%s\n", f.Name, arg)
		fmt.Fprintf(w, "        %s\n", usage)
		var notes []string
		if def := describeDefault(f); def != "" {
			notes = append(notes, "default "+def)
		}
		if withEnv {
			notes = append(notes, "env "+envName(f.Name))
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "        (%s)\n", strings.Join(notes, "; "))
		}
	})
}

// describeDefault is a flag's default as the help shows it; "" for an
// empty one.
func describeDefault(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "false":
		if _, ok := f.Value.(interface{ IsBoolFlag() bool }); ok || f.DefValue == "" {
			return ""
		}
	}
	if _, err := time.ParseDuration(f.DefValue); err == nil && strings.ContainsAny(f.DefValue, "hms") {
		return shortDuration(f.DefValue)
	}
	return f.DefValue
}

// shortDuration writes 10m0s as 10m and 2h0m0s as 2h.
func shortDuration(s string) string {
	for _, suffix := range []string{"m0s", "h0m"} {
		if strings.HasSuffix(s, suffix) {
			s = strings.TrimSuffix(s, suffix[1:])
		}
	}
	return s
}
