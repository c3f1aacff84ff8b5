// Package web holds the pages sessiond serves to people, embedded in the
// binary so no Node build step is needed: today the account page
// (account/index.html, app.js, passkey.js, style.css), where a user signs up, signs in
// with cookie mode, and sees and ends their sessions. Start reading at
// account/app.js; AccountHandler serves it under /account/.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed account
var files embed.FS

// AccountHandler serves the account page's files under /account/.
func AccountHandler() http.Handler {
	sub, err := fs.Sub(files, "account")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fileServer := http.StripPrefix("/account/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Only our own files may run or style the page, it may not be
		// framed (clickjacking of the sign-out buttons), and nothing about
		// it leaks in a Referer.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}
