package httpapi

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the HTTP layer's Prometheus instruments. Outcomes are counted
// by route and problem code ("ok" on success), so logins, refreshes and
// logouts by outcome need no counters of their own.
type Metrics struct {
	// byRoute holds the per-operation outcome counters
	// (sessiond_logins_total and friends), keyed by route pattern.
	byRoute  map[string]*prometheus.CounterVec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   prometheus.Counter
}

// NewMetrics registers the HTTP instruments with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_http_requests_total",
			Help: "HTTP requests by route and outcome (the problem code, or ok).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessiond_http_request_duration_seconds",
			Help:    "HTTP request duration by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessiond_http_panics_total",
			Help: "Handler panics turned into 500s by the recovery middleware; any is a bug.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.panics)
	outcome := func(name, help string, routes ...string) {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"code"})
		reg.MustRegister(c)
		for _, r := range routes {
			m.byRoute[r] = c
		}
	}
	m.byRoute = map[string]*prometheus.CounterVec{}
	outcome("sessiond_signups_total", "Signups by outcome (problem code, or ok).", "POST /v1/signup")
	outcome("sessiond_logins_total", "Logins by outcome (problem code, or ok).", "POST /v1/login")
	outcome("sessiond_refreshes_total", "Refreshes by outcome (problem code, or ok).", "POST /v1/refresh")
	outcome("sessiond_logouts_total", "Logouts (one session, all, or a revoked one) by outcome.",
		"POST /v1/logout", "POST /v1/logout-all", "DELETE /v1/sessions/{id}")
	return m
}

// recorder remembers what a handler answered.
type recorder struct {
	http.ResponseWriter
	status int
	code   string
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// setProblemCode tells the recorder, when w is one, which code was answered.
func setProblemCode(w http.ResponseWriter, code string) {
	if r, ok := w.(*recorder); ok {
		r.code = code
	}
}

// instrument must wrap the mux directly: the mux sets r.Pattern on the
// request it is given, which is how the route is known afterwards.
func (m *Metrics) instrument(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other" // unknown paths must not grow the label set
		}
		code := rec.code
		if code == "" {
			code = "ok"
		}
		m.requests.WithLabelValues(route, code).Inc()
		if c := m.byRoute[route]; c != nil {
			c.WithLabelValues(code).Inc()
		}
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

func (m *Metrics) panicked() {
	if m != nil {
		m.panics.Inc()
	}
}
