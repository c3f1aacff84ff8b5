package outbox

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
)

// Metrics are the worker's Prometheus series. The pending gauges describe
// the shared database, so every instance reports the same figures: take
// their max, not their sum.
type Metrics struct {
	pending    prometheus.Gauge
	oldest     prometheus.Gauge
	deliveries *prometheus.CounterVec
	// Mail has series of its own besides its share of the above: mail is
	// what people wait for, and an operator alerts on it apart from
	// webhooks.
	mailPending prometheus.Gauge
	mailSent    prometheus.Counter
	mailFailed  *prometheus.CounterVec
}

// Kinds of mail failure, the kind label of sessiond_mail_failed_total.
const (
	mailFailedRetry     = "retry"     // refused or unreachable, to be tried again
	mailFailedPermanent = "permanent" // refused for good, or retries exhausted
	mailFailedExpired   = "expired"   // its token expired before it could go
)

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
		mailPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sessiond_mail_pending",
			Help: "Mail waiting to be sent (including mail being retried, and all mail while no SMTP server is configured).",
		}),
		mailSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessiond_mail_sent_total",
			Help: "Mail the SMTP server accepted.",
		}),
		mailFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessiond_mail_failed_total",
			Help: "Mail not sent, by kind: retry (an attempt failed, it is tried again), permanent (given up), expired (its link expired before it could be sent).",
		}, []string{"kind"}),
	}
	for _, k := range []string{mailFailedRetry, mailFailedPermanent, mailFailedExpired} {
		m.mailFailed.WithLabelValues(k) // every kind reads 0 before its first
	}
	for _, c := range []prometheus.Collector{m.pending, m.oldest, m.deliveries, m.mailPending, m.mailSent, m.mailFailed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// MailExpired counts n mails the sweep failed because their token expired
// while they waited.
func (m *Metrics) MailExpired(n int) {
	if m != nil && n > 0 {
		m.mailFailed.WithLabelValues(mailFailedExpired).Add(float64(n))
	}
}

// count records one recorded attempt of a message of channel.
func (m *Metrics) count(channel, outcome string) {
	m.deliveries.WithLabelValues(channel, outcome).Inc()
	if channel != sessiond.ChannelMail {
		return
	}
	switch outcome {
	case outcomeDelivered:
		m.mailSent.Inc()
	case outcomeRetry:
		m.mailFailed.WithLabelValues(mailFailedRetry).Inc()
	case outcomeFailed:
		m.mailFailed.WithLabelValues(mailFailedPermanent).Inc()
	}
}
