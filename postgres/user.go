package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
)

// CreateUser stores u. CodeEmailTaken if the email is in use.
func (db *DB) CreateUser(ctx context.Context, u *sessiond.User) error {
	return db.Tx(ctx, func(t sessiond.Tx) error { return t.InsertUser(u) })
}

const (
	userByEmail = `SELECT ` + userColumns + ` FROM users WHERE email = $1`
	userByID    = `SELECT ` + userColumns + ` FROM users WHERE id = $1`
)

// UserByEmail returns the user with that (normalized) email. CodeNotFound.
func (db *DB) UserByEmail(ctx context.Context, email string) (*sessiond.User, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	u, err := scanUser(db.pool.QueryRow(ctx, userByEmail, email))
	return u, storeError("get user by email", err)
}

// UserByID returns the user with that id. CodeNotFound.
func (db *DB) UserByID(ctx context.Context, id string) (*sessiond.User, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	u, err := scanUser(db.pool.QueryRow(ctx, userByID, id))
	return u, storeError("get user by id", err)
}

// scanUser reads one row of userColumns.
func scanUser(row pgx.Row) (*sessiond.User, error) {
	var u sessiond.User
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.CreatedAt, &u.EmailVerified, &u.Disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errUserNotFound()
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt = sessiond.Now(u.CreatedAt)
	return &u, nil
}
