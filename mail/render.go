package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"strings"
	texttemplate "text/template"
	"unicode"
)

//go:embed templates
var templateFS embed.FS

// kinds lists every Kind, for parsing each one's templates up front.
var kinds = []Kind{KindVerifyEmail, KindResetPassword, KindPasswordChanged, KindEmailChanged, KindAccountExists}

type kindTemplates struct {
	text *texttemplate.Template // "subject" and "text"
	html *htmltemplate.Template // "layout", which runs "html"
}

// templates are parsed once: they are part of the binary, so a mistake in
// one is a bug that every test run finds.
var templates = func() map[Kind]kindTemplates {
	funcs := htmltemplate.FuncMap{"button": func(link, label string) buttonView { return buttonView{link, label} }}
	m := map[Kind]kindTemplates{}
	for _, k := range kinds {
		m[k] = kindTemplates{
			text: texttemplate.Must(texttemplate.New(string(k)).ParseFS(templateFS, "templates/footer.txt", "templates/"+string(k)+".txt")),
			html: htmltemplate.Must(htmltemplate.New(string(k)).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+string(k)+".html")),
		}
	}
	return m
}()

type buttonView struct{ Link, Label string }

// view is what a template sees.
type view struct {
	Product   string
	PublicURL string
	Subject   string // for the HTML's title
	To        string
	// Link is the mail's action: the page its token is for, or the page
	// that asks for a reset link.
	Link     string
	Expires  string // when the token expires, in UTC; empty without one
	NewEmail string
	At       string // when the change happened, in UTC; empty if unknown
}

// Site is what the templates say about this installation.
type Site struct {
	// Product names the service in subjects and bodies; default
	// "sessiond".
	Product string
	// PublicURL is where people reach sessiond (SESSIOND_PUBLIC_URL); the
	// links point below it.
	PublicURL string
}

// Validate checks the site's settings.
func (s Site) Validate() error {
	if _, err := publicHost(s.PublicURL); err != nil {
		return err
	}
	if strings.IndexFunc(s.Product, unicode.IsControl) >= 0 {
		return errors.New("mail product name holds a control character")
	}
	return nil
}

// Rendered is a mail's subject and its two bodies.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// Link paths below the public URL. The token travels in the fragment,
// which browsers never send to a server, so it stays out of access logs
// and Referer headers; the page reads it and uses it only when the person
// presses a button, so a mail scanner that opens links spends nothing.
const (
	verifyPath = "/account/verify"
	resetPath  = "/account/reset"
	// forgotPath asks for a reset link: where a notice without a token
	// sends someone who did not make the change it reports.
	forgotPath = "/account/forgot"
)

// timeLayout is how times appear in mail: unambiguous, in UTC, since the
// reader's zone is unknown.
const timeLayout = "2 January 2006, 15:04 UTC"

// Link is the action of m's mail: the page its token is for, the token in
// the fragment, or the page that asks for a reset link.
func (s Site) Link(m Message) string {
	path := resetPath
	switch {
	case m.Kind == KindVerifyEmail:
		path = verifyPath
	case m.Token == "":
		path = forgotPath
	}
	link := strings.TrimRight(s.PublicURL, "/") + path
	if m.Token != "" {
		link += "#token=" + url.QueryEscape(m.Token)
	}
	return link
}

// Render makes m's subject and bodies.
func (s Site) Render(m Message) (Rendered, error) {
	if err := s.Validate(); err != nil {
		return Rendered{}, err
	}
	if err := m.Validate(); err != nil {
		return Rendered{}, err
	}
	base := strings.TrimRight(s.PublicURL, "/")
	v := view{Product: s.Product, PublicURL: base, To: m.To, NewEmail: m.NewEmail}
	if v.Product == "" {
		v.Product = "sessiond"
	}
	v.Link = s.Link(m)
	if m.Token != "" {
		v.Expires = m.ExpiresAt.UTC().Format(timeLayout)
	}
	if !m.At.IsZero() {
		v.At = m.At.UTC().Format(timeLayout)
	}
	t := templates[m.Kind]
	var subject, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subject, "subject", v); err != nil {
		return Rendered{}, fmt.Errorf("render %s subject: %w", m.Kind, err)
	}
	v.Subject = strings.Join(strings.Fields(subject.String()), " ")
	if err := t.text.ExecuteTemplate(&text, "text", v); err != nil {
		return Rendered{}, fmt.Errorf("render %s text: %w", m.Kind, err)
	}
	if err := t.html.ExecuteTemplate(&html, "layout", v); err != nil {
		return Rendered{}, fmt.Errorf("render %s HTML: %w", m.Kind, err)
	}
	return Rendered{Subject: v.Subject, Text: text.String(), HTML: html.String()}, nil
}
