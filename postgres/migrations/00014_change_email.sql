-- Email changes: a token of kind change_email carries, besides the address
-- it was issued under (email, which voids it once the user's address is
-- another), the address the change goes to (new_email).

-- +goose Up
ALTER TABLE account_tokens ADD COLUMN new_email TEXT NOT NULL DEFAULT '';
ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_kind_check;
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_kind_check
    CHECK (kind IN ('verify_email', 'reset_password', 'change_email'));
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_new_email_check
    CHECK ((kind = 'change_email') = (new_email <> ''));

-- +goose Down
DELETE FROM account_tokens WHERE kind = 'change_email';
ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_new_email_check;
ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_kind_check;
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_kind_check
    CHECK (kind IN ('verify_email', 'reset_password'));
ALTER TABLE account_tokens DROP COLUMN new_email;
