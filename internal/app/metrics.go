package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
)

// events counts what package auth reports.
type events struct {
	evictions prometheus.Counter
	reuse     prometheus.Counter
}

func newEvents(reg prometheus.Registerer) *events {
	e := &events{
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessiond_sessions_evicted_total",
			Help: "Live sessions deleted by logins beyond the per-user cap (least recently used first).",
		}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessiond_refresh_reuse_detected_total",
			Help: "Superseded refresh tokens presented after the grace window, or older generations: sessions ended as stolen.",
		}),
	}
	reg.MustRegister(e.evictions, e.reuse)
	return e
}

func (e *events) SessionsEvicted(n int) { e.evictions.Add(float64(n)) }
func (e *events) RefreshReuseDetected() { e.reuse.Inc() }

// poolCollector reads a store's connection pools at scrape time, so the
// gauges cost nothing between scrapes.
type poolCollector struct {
	stats                          func() []sessiond.PoolStats
	conns, waits, waitTime, maxDsc *prometheus.Desc
}

func newPoolCollector(stats func() []sessiond.PoolStats) *poolCollector {
	return &poolCollector{
		stats: stats,
		conns: prometheus.NewDesc("sessiond_db_connections", "Database connections by pool and state (open, in_use, idle).",
			[]string{"pool", "state"}, nil),
		maxDsc: prometheus.NewDesc("sessiond_db_connections_max", "The most connections a pool may open.",
			[]string{"pool"}, nil),
		waits: prometheus.NewDesc("sessiond_db_waits_total", "Connection acquisitions that had to wait.",
			[]string{"pool"}, nil),
		waitTime: prometheus.NewDesc("sessiond_db_wait_seconds_total", "Time spent waiting for a connection.",
			[]string{"pool"}, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.maxDsc
	ch <- c.waits
	ch <- c.waitTime
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Open), s.Name, "open")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.InUse), s.Name, "in_use")
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Idle), s.Name, "idle")
		ch <- prometheus.MustNewConstMetric(c.maxDsc, prometheus.GaugeValue, float64(s.Max), s.Name)
		ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.Waits), s.Name)
		ch <- prometheus.MustNewConstMetric(c.waitTime, prometheus.CounterValue, s.WaitTime.Seconds(), s.Name)
	}
}
