-- +goose Up
-- Failed-login counters for login throttling (sessiond.AttemptStore), shared
-- by every instance. key is an opaque hash made by package auth, so the table
-- holds no emails or IP addresses; it compares in byte order like the other
-- ids.
CREATE TABLE login_failures (
    key          TEXT COLLATE "C" PRIMARY KEY,
    count        INTEGER NOT NULL,
    window_start TIMESTAMPTZ NOT NULL
);
-- The stale sweep finds ended windows by their start.
CREATE INDEX login_failures_window_start_idx ON login_failures (window_start);

-- +goose Down
DROP TABLE login_failures;
