package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/sessiond/sessiond"
)

// CreateUser stores u. CodeEmailTaken if the email is in use.
func (db *DB) CreateUser(ctx context.Context, u *sessiond.User) error {
	return db.Tx(ctx, func(t sessiond.Tx) error { return t.InsertUser(u) })
}

const userByEmail = `SELECT ` + userColumns + ` FROM users WHERE email = ?`

// UserByEmail returns the user with that (normalized) email. CodeNotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (*sessiond.User, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	u, err := scanUser(db.r.QueryRowContext(ctx, userByEmail, email))
	return u, storeError("get user by email", err)
}

const userByID = `SELECT ` + userColumns + ` FROM users WHERE id = ?`

// UserByID returns the user with that id. CodeNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*sessiond.User, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	u, err := scanUser(db.r.QueryRowContext(ctx, userByID, id))
	return u, storeError("get user by id", err)
}

// scanUser reads one row of userColumns.
func scanUser(row *sql.Row) (*sessiond.User, error) {
	var u sessiond.User
	var created int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.EmailVerified, &u.Disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errUserNotFound()
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}
