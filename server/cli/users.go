package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

func runUserAdd(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "user add")
	data := fs.String("data", "data", "data directory")
	storeURL := fs.String("store", "", storeUsage)
	name := fs.String("name", "", "user name (letters, digits, '.', '_', '-')")
	role := fs.String("role", "", "field_worker, supervisor, admin or viewer (reads records, snapshots and reports; identity numbers masked)")
	scope := fs.String("scope", "", "comma-separated division codes of 2, 4, 6, 9 or 12 digits (province to village), e.g. 500240,150422 (not for admin)")
	create := fs.Bool("create", false, "create the database in --data if it has none (otherwise a mistyped --data is an error)")
	department := fs.String("department", "", "the `DEPARTMENT` the user belongs to, one of the forms' departments.json (poverty_alleviation, housing, water, education, health_insurance, civil_affairs, disabled_persons_federation); the change log records it with each change; none when absent")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	prefixes := splitScope(*scope)
	if err := auth.CheckUser(*name, *role, prefixes); err != nil {
		return err
	}
	if err := checkScopeLevels(prefixes); err != nil {
		return err
	}
	if !*create && *storeURL == "" {
		if err := mustHaveDatabase(*data); err != nil {
			return err
		}
	}
	if *role == syncproto.RoleAdmin && len(prefixes) > 0 {
		return fmt.Errorf("an admin has every region; leave out --scope")
	}
	password, err := readPassword(env.Stdin)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	store, err := openAccounts(ctx, *storeURL, *data, true, env.Stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	if *department != "" {
		sch, err := publishedLatest(ctx, store)
		if err != nil {
			return err
		}
		if sch.Registries().Department(*department) == nil {
			var names []string
			if reg := sch.Registries(); reg != nil {
				for _, d := range reg.Departments {
					names = append(names, d.Name)
				}
			}
			return fmt.Errorf("--department: unknown department %q (the forms declare %s)", *department, strings.Join(names, ", "))
		}
	}
	existing, err := store.User(ctx, *name)
	if err != nil {
		return err
	}
	if existing != nil && auth.VerifyPassword(existing.PasswordHash, password) {
		// The same password: keep its hash, so that changing a role or
		// a scope does not end the user's sessions (a new password does).
		hash = existing.PasswordHash
	}
	if err := store.PutUser(ctx, auth.User{Name: *name, PasswordHash: hash, Role: *role, Scope: prefixes, Department: *department}); err != nil {
		return err
	}
	verb := "created"
	if existing != nil {
		verb = "updated"
	}
	fmt.Fprintf(env.Stdout, "user %s %s: role %s, scope %s%s\n", *name, verb, *role, scopeText(*role, prefixes), departmentText(*department))
	return nil
}

// readPassword reads one line from r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", fmt.Errorf("the password is read from standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(r, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if len(line) < auth.MinPasswordLen {
		return "", fmt.Errorf("give a password of at least %d characters on standard input, e.g. echo 'secret-pass' | fieldsync user add ...", auth.MinPasswordLen)
	}
	return line, nil
}

// checkScopeLevels refuses a scope prefix that names no region: a
// division code is read in levels of 2, 4, 6, 9 and 12 digits, so that
// 5002401 (7 digits) would match villages of two townships by accident.
func checkScopeLevels(scope []string) error {
	for _, p := range scope {
		if !schema.IsDivisionPrefix(p) {
			return fmt.Errorf("--scope %s: a region is a division code of 2 (province), 4 (prefecture), 6 (county), 9 (township) or 12 (village) digits, not %d", p, len(p))
		}
	}
	return nil
}

func splitScope(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func scopeText(role string, scope []string) string {
	if role == syncproto.RoleAdmin {
		return "every region"
	}
	return strings.Join(scope, ",")
}

func runUserList(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "user list")
	data := fs.String("data", "data", "data directory")
	storeURL := fs.String("store", "", storeUsage)
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	store, err := openAccounts(ctx, *storeURL, *data, false, env.Stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	users, err := store.Users(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSCOPE\tSTATE\tUPDATED\tDEPARTMENT")
	for _, u := range users {
		state := "active"
		if u.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, scopeText(u.Role, u.Scope), state, syncproto.FormatTime(u.UpdatedAt), u.Department)
	}
	return tw.Flush()
}

// runUserDisable is user disable and user enable.
func runUserDisable(ctx context.Context, env Env, args []string) error {
	verb := "disable"
	if len(env.Args) > 1 && env.Args[1] == "enable" {
		verb = "enable"
	}
	fs := newFlagSet(env, "user "+verb)
	data := fs.String("data", "data", "data directory")
	name := fs.String("name", "", "the name of the user")
	storeURL := fs.String("store", "", storeUsage)
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	store, err := openAccounts(ctx, *storeURL, *data, false, env.Stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.SetUserDisabled(ctx, *name, verb == "disable", time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "user %s %sd\n", *name, verb)
	return nil
}

// demoAccounts are created by `fieldsync seed` with the demo data, and
// only then: one per role, scoped to the demo counties and townships.
var demoAccounts = []struct {
	name, role, password string
	scope                []string
}{
	{"admin", syncproto.RoleAdmin, "fieldsync-admin", nil},
	{"supervisor.shizhu", syncproto.RoleSupervisor, "fieldsync-demo", []string{"500240"}},
	{"supervisor.bairin", syncproto.RoleSupervisor, "fieldsync-demo", []string{"150422"}},
	{"worker.xituo", syncproto.RoleFieldWorker, "fieldsync-demo", []string{"500240107"}},
	{"worker.lindong", syncproto.RoleFieldWorker, "fieldsync-demo", []string{"150422101"}},
}

// seedDemoAccounts creates the demo accounts that do not exist yet (it
// never resets a password that was changed) and prints them.
func seedDemoAccounts(ctx context.Context, store auth.Accounts, out io.Writer) error {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "demo accounts:\nUSER\tPASSWORD\tROLE\tSCOPE")
	for _, a := range demoAccounts {
		existing, err := store.User(ctx, a.name)
		if err != nil {
			return err
		}
		password := a.password
		if existing != nil {
			password = "(unchanged)"
		} else {
			hash, err := auth.HashPassword(a.password)
			if err != nil {
				return err
			}
			if err := store.PutUser(ctx, auth.User{Name: a.name, PasswordHash: hash, Role: a.role, Scope: a.scope}); err != nil {
				return err
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.name, password, a.role, scopeText(a.role, a.scope))
	}
	return tw.Flush()
}

// departmentText is ", department D" for a user's department, or "".
func departmentText(d string) string {
	if d == "" {
		return ""
	}
	return ", department " + d
}
