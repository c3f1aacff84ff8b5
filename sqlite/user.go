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
func scanUser(row interface{ Scan(...any) error }) (*sessiond.User, error) {
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

const listUsers = `SELECT ` + userColumns + ` FROM users WHERE id > ? ORDER BY id LIMIT ?`

// Users returns at most limit users in id order after the id after.
func (db *DB) Users(ctx context.Context, after string, limit int) ([]sessiond.User, error) {
	out := []sessiond.User{}
	if limit <= 0 { // SQLite reads a negative LIMIT as "no limit"
		return out, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, listUsers, after, limit)
	if err != nil {
		return nil, storeError("list users", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, storeError("list users", err)
		}
		out = append(out, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list users", err)
	}
	return out, nil
}
