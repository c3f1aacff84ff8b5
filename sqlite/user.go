package sqlite

import (
	"context"
	"database/sql"
	"errors"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond"
)

const createUser = `INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)`

// CreateUser stores u. CodeEmailTaken if the email is in use.
func (db *DB) CreateUser(ctx context.Context, u *sessiond.User) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	_, err := db.w.ExecContext(ctx, createUser, u.ID, u.Email, u.PasswordHash, micros(u.CreatedAt))
	// email is the table's one UNIQUE constraint; a clash on the id (the
	// primary key) is a caller's bug, left to storeError.
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return sessiond.Errorf(sessiond.CodeEmailTaken, "email is already registered")
	}
	if err != nil {
		return storeError("create user", err)
	}
	return nil
}

const userByEmail = `SELECT id, email, password_hash, created_at FROM users WHERE email = ?`

// UserByEmail returns the user with that (normalized) email. CodeNotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (*sessiond.User, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	return scanUser("get user by email", db.r.QueryRowContext(ctx, userByEmail, email))
}

const userByID = `SELECT id, email, password_hash, created_at FROM users WHERE id = ?`

// UserByID returns the user with that id. CodeNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*sessiond.User, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	return scanUser("get user by id", db.r.QueryRowContext(ctx, userByID, id))
}

func scanUser(op string, row *sql.Row) (*sessiond.User, error) {
	var u sessiond.User
	var created int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "user not found")
	}
	if err != nil {
		return nil, storeError(op, err)
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}
