package main

import (
	"testing"
)

// TestLookAlikeEmailsAreOneAccount: addresses that differ only in how they
// were typed (fullwidth forms, a decomposed accent, case, spaces) are one
// account, and addresses with invisible or control characters are refused,
// at signup and at login.
func TestLookAlikeEmailsAreOneAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		same := []struct{ name, signup, login string }{
			{"fullwidth letters", "ada@example.com", "ａｄａ@example.com"},
			{"fullwidth everything", "ｇｒａｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "grace@example.com"},
			{"decomposed accent", "rene\u0301@example.com", "ren\u00e9@example.com"},
			{"composed accent", "jos\u00e9@example.com", "jose\u0301@example.com"},
			{"fullwidth capitals", "alan@example.com", "ＡＬＡＮ@example.com"},
		}
		for _, tt := range same {
			t.Run(tt.name, func(t *testing.T) {
				e.call("POST", "/v1/signup", map[string]string{"email": tt.signup, "password": testPassword}, "").want(t, 201, "")
				e.call("POST", "/v1/login", map[string]string{"email": tt.login, "password": testPassword}, "").want(t, 200, "")
				e.call("POST", "/v1/signup", map[string]string{"email": tt.login, "password": testPassword}, "").want(t, 409, "email_taken")
			})
		}
		refused := []struct{ name, email string }{
			{"zero-width space", "ada\u200b@example.com"},
			{"zero-width joiner", "a\u200dda@example.com"},
			{"byte-order mark", "\ufeffada@example.com"},
			{"soft hyphen", "ad\u00ada@example.com"},
			{"right-to-left override", "ada@exa\u202emple.com"},
			{"control character", "ada\u0007@example.com"},
			{"zero-width in the domain", "ada@exam\u200bple.com"},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				e.call("POST", "/v1/signup", map[string]string{"email": tt.email, "password": testPassword}, "").want(t, 422, "invalid_email")
				e.call("POST", "/v1/login", map[string]string{"email": tt.email, "password": testPassword}, "").want(t, 422, "invalid_email")
			})
		}
	})
}
