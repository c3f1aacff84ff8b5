-- Attempt counters (sessiond.AttemptStore) replace the failed-login counters:
-- an attempt is now reserved before its password is checked, counters are
-- keyed by a MAC under a server secret rather than a bare SHA-256 (which an
-- IPv4 address reverses in seconds), and a window doubles after one that was
-- used up. The old rows are keyed the old way and would never match again.
-- Times are INTEGER Unix microseconds (UTC), like every time in this schema.

-- +goose Up
DROP TABLE login_failures;

CREATE TABLE login_attempts (
    key        TEXT    PRIMARY KEY,
    count      INTEGER NOT NULL,
    level      INTEGER NOT NULL, -- the window is the base window << level
    window_end INTEGER NOT NULL,
    forget_at  INTEGER NOT NULL  -- one window after window_end: the sweep deletes from here
) STRICT;

CREATE INDEX login_attempts_forget_at ON login_attempts (forget_at);

-- +goose Down
DROP TABLE login_attempts;

CREATE TABLE login_failures (
    key          TEXT    PRIMARY KEY,
    count        INTEGER NOT NULL,
    window_start INTEGER NOT NULL
) STRICT;

CREATE INDEX login_failures_window_start ON login_failures (window_start);
