package sessiond

import (
	"context"
	"time"
)

// User is an account. PasswordHash is an argon2id PHC string, never the password.
type User struct {
	ID           string
	Email        string
	PasswordHash string
	CreatedAt    time.Time
	// EmailVerified is set once the owner proved the address is theirs, or
	// an operator said so.
	EmailVerified bool
	// Disabled refuses login and refresh; an operator sets it.
	Disabled bool
}

// UserStore persists users.
type UserStore interface {
	// CreateUser stores u. CodeEmailTaken if the email is in use.
	CreateUser(ctx context.Context, u *User) error
	// UserByEmail returns the user with that (normalized) email. CodeNotFound.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UserByID returns the user with that id. CodeNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// Users returns at most limit users in id order, those after the id
	// after (all when it is empty).
	Users(ctx context.Context, after string, limit int) ([]User, error)
}
