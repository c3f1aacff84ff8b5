package auth

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/text/unicode/norm"

	"github.com/sessiond/sessiond"
)

// DefaultPasswordMinScore is the zxcvbn score (0-4) a new password needs.
const DefaultPasswordMinScore = 2

// normalizePassword applies NFKC, so that the same password typed on
// different keyboards (composed or decomposed accents, full-width digits)
// hashes the same (NIST SP 800-63B 5.1.1.2). Signup and login both use it.
func normalizePassword(pw string) string { return norm.NFKC.String(pw) }

// checkPassword enforces the length bounds in code points after
// normalization, then refuses common or easily guessed passwords, with the
// email as context so "ada@example.com" cannot use "ada example 2026"
// (none when email is empty).
func (s *Service) checkPassword(pw, email string) error {
	if !utf8.ValidString(pw) {
		return sessiond.Errorf(sessiond.CodeWeakPassword, "password must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(pw); n < s.pwMin || n > PasswordMaxLength {
		return sessiond.Errorf(sessiond.CodeWeakPassword, "password must be %d to %d characters long, got %d", s.pwMin, PasswordMaxLength, n)
	}
	var words []string
	if email != "" {
		words = emailWords(email)
	}
	r := zxcvbn.PasswordStrength(pw, words)
	if r.Score >= s.pwScore {
		return nil
	}
	return sessiond.Errorf(sessiond.CodeWeakPassword, "password is too easy to guess (strength %d of 4, %d required): %s",
		r.Score, s.pwScore, weakness(r))
}

// emailWords are the parts of an email a password must not be made of:
// "ada.lovelace@example.com" gives the address, "ada.lovelace",
// "adalovelace", "ada", "lovelace" and "example.com".
func emailWords(email string) []string {
	local, domain, _ := strings.Cut(email, "@")
	sep := func(r rune) bool { return strings.ContainsRune("._-+", r) }
	words := strings.FieldsFunc(local, sep)
	return append([]string{email, local, strings.Join(words, ""), domain}, words...)
}

// weakness says in words why zxcvbn found a password guessable.
func weakness(r zxcvbn.Result) string {
	for _, m := range r.Sequence {
		switch {
		case m.Pattern == "dictionary" && m.DictionaryName == "user_inputs":
			return fmt.Sprintf("it contains %q from your email address", m.Token)
		case m.Pattern == "dictionary" && m.DictionaryName == "passwords":
			return fmt.Sprintf("%q is one of the most common passwords", m.Token)
		case m.Pattern == "dictionary":
			return fmt.Sprintf("%q is a common word or name", m.Token)
		case m.Pattern == "repeat":
			return fmt.Sprintf("repeated characters like %q are easy to guess", m.Token)
		case m.Pattern == "sequence":
			return fmt.Sprintf("sequences like %q are easy to guess", m.Token)
		case m.Pattern == "spatial":
			return fmt.Sprintf("keyboard patterns like %q are easy to guess", m.Token)
		case m.Pattern == "date":
			return fmt.Sprintf("dates like %q are easy to guess", m.Token)
		}
	}
	return "add more words or characters that are not common patterns"
}
