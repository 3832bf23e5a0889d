package server

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
)

// pageFiles is the page at /: HTML, script and style, all served from the
// binary; the page fetches nothing from elsewhere.
//
//go:embed page
var pageFiles embed.FS

// pageCSP keeps the page to this server's own resources (and the object
// URL of the photo being previewed).
const pageCSP = "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

func (s *Server) pageHandlers() (index, static http.Handler) {
	sub, err := fs.Sub(pageFiles, "page")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	withCSP := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", pageCSP)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			h.ServeHTTP(w, r)
		})
	}
	index = withCSP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	}))
	static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Files only, with the same JSON 404 as other paths: no listing.
		if fi, err := fs.Stat(sub, strings.TrimPrefix(r.URL.Path, "/static/")); err != nil || fi.IsDir() {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
			return
		}
		http.StripPrefix("/static/", files).ServeHTTP(w, r)
	})
	return index, withCSP(static)
}
