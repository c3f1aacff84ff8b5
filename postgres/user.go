package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

const createUser = `INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)`

// emailConstraint is the unique constraint on users.email, named in
// 00001_init.sql so that a taken email is told apart from any other
// unique violation.
const emailConstraint = "users_email_key"

// CreateUser stores u. CodeEmailTaken if the email is in use.
func (db *DB) CreateUser(ctx context.Context, u *sessiond.User) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, createUser, u.ID, u.Email, u.PasswordHash, u.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == emailConstraint {
		return sessiond.Errorf(sessiond.CodeEmailTaken, "the email address is already registered")
	}
	return storeError("create user", err)
}

const (
	userByEmail = `SELECT id, email, password_hash, created_at FROM users WHERE email = $1`
	userByID    = `SELECT id, email, password_hash, created_at FROM users WHERE id = $1`
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

func scanUser(row pgx.Row) (*sessiond.User, error) {
	var u sessiond.User
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "no such user")
	}
	if err != nil {
		return nil, err
	}
	u.CreatedAt = sessiond.Now(u.CreatedAt)
	return &u, nil
}
