// Package metricstest reads collected metrics back in tests: how many
// observations a histogram series holds and their sum. Tests assert on what
// a /metrics scrape would show, through the same Gatherer, rather than on
// the collector objects.
package metricstest
