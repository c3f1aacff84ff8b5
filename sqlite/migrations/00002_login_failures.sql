-- Failed-login counters for login throttling (sessiond.AttemptStore), shared
-- by every process using this file. key is an opaque hash made by package
-- auth, so the table holds no emails or IP addresses. window_start is INTEGER
-- Unix microseconds (UTC), like every time in this schema.

-- +goose Up
CREATE TABLE login_failures (
    key          TEXT    PRIMARY KEY,
    count        INTEGER NOT NULL,
    window_start INTEGER NOT NULL
) STRICT;

-- The stale sweep finds ended windows by their start.
CREATE INDEX login_failures_window_start ON login_failures (window_start);

-- +goose Down
DROP TABLE login_failures;
