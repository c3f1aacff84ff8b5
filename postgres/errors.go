package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

// storeError turns an error that reached a store method's boundary into a
// *sessiond.Error, by SQLSTATE and never by message text. Domain outcomes
// pass through. An error of a class that says the statement itself is wrong
// (permanentClasses) is a bug: CodeInternal, since retrying cannot cure it.
// Every other database failure (connection refused or lost, timeout,
// cancellation, a transaction still conflicting after retries, the server
// shutting down) is CodeUnavailable, never a not-found or token verdict that
// would make a client throw away a valid token.
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *sessiond.Error
	if errors.As(err, &e) {
		return e
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && permanentClasses[sqlstateClass(pgErr.Code)] {
		return sessiond.Internal(op, err)
	}
	return sessiond.Unavailable(op, err)
}

// permanentClasses are the SQLSTATE classes (the first two characters) of
// errors in the statement rather than in the database's state: 23 integrity
// constraint violation (unique, foreign key, check, not null) and 42 syntax
// error or access rule violation (undefined table or column, 42501
// insufficient privilege). Class 22 (data exception) is left out on purpose:
// it includes values a client chose, such as a NUL byte in a text parameter,
// which must not become a 500.
var permanentClasses = map[string]bool{
	"23": true,
	"42": true,
}

func sqlstateClass(code string) string {
	if len(code) < 2 {
		return ""
	}
	return code[:2]
}
