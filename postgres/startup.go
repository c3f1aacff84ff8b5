package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Misconfigured tells, for an error from connecting to or migrating the
// database, whether the cause is one that waiting will not cure: a wrong
// password, a database that does not exist, a user without the privileges
// the schema needs. It returns one line saying what is missing, or "" when
// the error may pass (the server unreachable, starting up, out of
// connections), so that a caller retries only what can recover. Decided by
// SQLSTATE, never by message text.
func Misconfigured(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return ""
	}
	cause := fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
	switch {
	case strings.HasPrefix(pgErr.Code, "28"): // invalid authorization specification, e.g. 28P01, 28000
		return "authentication failed: " + cause + "; check the user and password in SESSIOND_DATABASE_URL and the server's pg_hba.conf"
	case pgErr.Code == "3D000": // invalid_catalog_name
		return "the database does not exist: " + cause + "; create it (createdb) or fix its name in SESSIOND_DATABASE_URL"
	case pgErr.Code == "42501": // insufficient_privilege
		return "the database user lacks a privilege: " + cause + "; grant it (e.g. GRANT CREATE ON SCHEMA public TO the user, or make the user the database's owner) or use a user that has it"
	case transientClass(pgErr.Code):
		return ""
	}
	return "the database refused the schema: " + cause
}

// transientClass reports whether a SQLSTATE is of a class that passes by
// itself: connection exceptions (08), insufficient resources (53, e.g. too
// many connections), operator intervention (57, e.g. the server starting or
// shutting down), system errors (58) and transaction rollbacks (40).
func transientClass(code string) bool {
	switch code[:min(2, len(code))] {
	case "08", "40", "53", "57", "58":
		return true
	}
	return false
}
