package sqlite

import (
	"context"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond"
)

// storeError turns an error that reached a store method's boundary into a
// *sessiond.Error, by SQLite result code and never by message text. Domain
// outcomes pass through. An error that retrying cannot cure, because the
// statement itself is wrong (a constraint it violates, SQL that does not
// parse or names no such table, a value of the wrong type), is a bug:
// CodeInternal. Everything else (SQLITE_BUSY past the busy timeout, I/O
// errors, a full disk, an interrupted statement, a canceled context or
// passed deadline, a closed database) is an outage: CodeUnavailable.
func storeError(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *sessiond.Error
	if errors.As(err, &e) {
		return e
	}
	// A statement cut short by its context may surface as an SQLite
	// error of its own; the cause is the deadline, not the statement.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return sessiond.Unavailable(op, err)
	}
	if permanent(err) {
		return sessiond.Internal(op, err)
	}
	return sessiond.Unavailable(op, err)
}

// permanent reports whether err is an SQLite error whose primary result code
// says the statement is at fault rather than the database's state.
func permanent(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_CONSTRAINT, // 19: UNIQUE, PRIMARY KEY, FOREIGN KEY, CHECK, NOT NULL
		sqlite3.SQLITE_ERROR,    // 1: syntax error, no such table or column
		sqlite3.SQLITE_MISMATCH, // 20: datatype mismatch (STRICT tables)
		sqlite3.SQLITE_RANGE,    // 25: bind parameter index out of range
		sqlite3.SQLITE_TOOBIG:   // 18: a value over SQLite's length limit
		return true
	}
	return false
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY violation, for the
// statements where one is an expected outcome rather than a bug.
func isUniqueViolation(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}
