package mailtest_test

import (
	"strings"
	"testing"

	"github.com/sessiond/sessiond/mail/mailtest"
)

func TestParse(t *testing.T) {
	crlf := func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
	tests := []struct {
		name       string
		data       []byte
		text, html string
	}{
		{"plain", crlf("Subject: hi\nContent-Type: text/plain; charset=utf-8\n\nhello #token=abc\n"), "hello #token=abc\n", ""},
		{"base64 HTML", crlf("Subject: hi\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\nPHA+aGk8\nL3A+\n"), "", "<p>hi</p>"},
		{"alternative", crlf(`Subject: hi
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

a long line=
 #token=x%2By
--b
Content-Type: text/html; charset=utf-8

<a href=3D"x">
--b--
`), "a long line #token=x%2By", `<a href=3D"x">`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := mailtest.Parse(tt.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Text != tt.text || p.HTML != tt.html || p.Header.Get("Subject") != "hi" {
				t.Errorf("got text %q, HTML %q, subject %q; want %q, %q, hi", p.Text, p.HTML, p.Header.Get("Subject"), tt.text, tt.html)
			}
		})
	}
	if tok := mailtest.Token("see https://x/account/verify#token=x%2By\n"); tok != "x+y" {
		t.Errorf("Token = %q, want x+y", tok)
	}
	if tok := mailtest.Token("no link"); tok != "" {
		t.Errorf("Token = %q, want empty", tok)
	}
	if _, err := mailtest.Parse([]byte("Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n")); err == nil {
		t.Errorf("Parse accepted multipart/mixed")
	}
}
