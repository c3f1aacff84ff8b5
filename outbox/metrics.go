package outbox

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus series. The pending gauges describe
// the shared database, so every instance reports the same figures: take
// their max, not their sum.
type Metrics struct {
	pending    prometheus.Gauge
	oldest     prometheus.Gauge
	deliveries *prometheus.CounterVec
}

// Delivery outcomes, the outcome label of sessiond_outbox_deliveries_total.
const (
	outcomeDelivered = "delivered"
	outcomeRetry     = "retry"      // failed, to be tried again
	outcomeFailed    = "failed"     // failed for good: permanent, or retries exhausted
	outcomeLeaseLost = "lease_lost" // the outcome came too late and was dropped
)

// NewMetrics makes the worker's series and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessiond_outbox_pending",
			Help: "Outbox messages waiting to be delivered (including those being retried).",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessiond_outbox_oldest_pending_seconds",
			Help: "Age of the oldest outbox message still pending; 0 when none is.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_outbox_deliveries_total",
			Help: "Delivery attempts by channel and outcome (delivered, retry, failed, lease_lost).",
		}, []string{"channel", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.pending, m.oldest, m.deliveries} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
