package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus collectors, in a registry of its own
// so that several servers (tests) do not collide.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec   // endpoint, code
	latency     *prometheus.HistogramVec // endpoint
	inFlight    prometheus.Gauge
	batchSize   *prometheus.HistogramVec // model
	forwardTime *prometheus.HistogramVec // model
	queueDepth  *prometheus.GaugeVec     // model
	images      *prometheus.CounterVec   // model
	rejected    *prometheus.CounterVec   // model: images refused, queue full
	dropped     *prometheus.CounterVec   // model: images whose client left
	loadTime    *prometheus.GaugeVec     // model
}

const namespace = "res2net"

func newMetrics(maxBatch int) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by endpoint (route pattern) and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time from the request's headers to the end of the response, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1 ms to 16 s
		}, []string{"endpoint"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "http_requests_in_flight",
			Help: "Requests being served.",
		}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "batch_size",
			Help:    "Images per forward pass.",
			Buckets: prometheus.LinearBuckets(1, 1, max(maxBatch, 1)),
		}, []string{"model"}),
		forwardTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "forward_duration_seconds",
			Help:    "Time of one batched forward pass.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"model"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "queue_depth",
			Help: "Images waiting for a forward pass.",
		}, []string{"model"}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "images_classified_total",
			Help: "Images run through the network.",
		}, []string{"model"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "images_rejected_total",
			Help: "Images refused because the queue was full.",
		}, []string{"model"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "images_dropped_total",
			Help: "Queued images skipped because their client went away.",
		}, []string{"model"}),
		loadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_load_seconds",
			Help: "Time taken to load the model's weights.",
		}, []string{"model"}),
	}
	m.registry.MustRegister(m.requests, m.latency, m.inFlight, m.batchSize, m.forwardTime, m.queueDepth,
		m.images, m.rejected, m.dropped, m.loadTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
