// Package web holds the pages sessiond serves to people, embedded in the
// binary so no Node build step is needed: today the account page
// (account/index.html, app.js, mfa.js, passkey.js, style.css, and
// sessiond-browser.js, a copy of the browser SDK in js/src), where a user
// signs up, signs in with cookie mode, sees and ends their sessions, and
// manages the account (address, password, deletion, second factors,
// passkeys), and where the links in account mail land. Start reading at
// account/app.js; AccountHandler serves it under /account/.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"time"
)

//go:embed account
var files embed.FS

// pagePaths are the paths, besides /account/ itself, that serve the account
// page: the targets of the links in account mail. The page picks its view
// from the path and reads the link's token from the fragment, which never
// reaches the server, so a GET of these (a mail scanner, a prefetch) is a
// plain page load that consumes nothing.
var pagePaths = []string{"/account/verify", "/account/reset", "/account/forgot"}

// AccountHandler serves the account page's files under /account/.
func AccountHandler() http.Handler {
	sub, err := fs.Sub(files, "account")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]bool{}
	for _, p := range pagePaths {
		pages[p] = true
	}
	fileServer := http.StripPrefix("/account/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Only our own files may run or style the page, it may not be
		// framed (clickjacking of the sign-out buttons), and nothing about
		// it leaks in a Referer. Images may be data: URLs: the TOTP QR code
		// comes as one in the enrolment answer, drawn by no outside script.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		if pages[r.URL.Path] {
			http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(index))
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
