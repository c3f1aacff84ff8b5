-- When an outbox message stops being worth sending: the expiry of the
-- token a mail carries. A mail that waited past it (no SMTP server, or an
-- outage longer than the token's life) is failed by the sweep and its
-- payload erased, so the token does not linger in the database; workers
-- never claim it. NULL: the message never expires (webhooks, notices).

-- +goose Up
ALTER TABLE outbox ADD COLUMN expires_at INTEGER NULL;
-- The sweep looks only at pending messages that can expire.
CREATE INDEX outbox_pending_expires_at ON outbox (expires_at)
    WHERE status = 'pending' AND expires_at IS NOT NULL;

-- +goose Down
DROP INDEX outbox_pending_expires_at;
ALTER TABLE outbox DROP COLUMN expires_at;
