// Command logging is a proxy-wasm HTTP filter that writes one JSON access-log
// line per request through Envoy's wasm log: method, path, status, duration
// (from the request headers reaching this filter to the end of the stream,
// by the host clock), bytes in and out, request id, traceparent and chosen
// headers, with
// credentials redacted. Sampling is deterministic per request id, so every
// proxy in the fleet (and every test) keeps or drops the same requests.
//
// Configuration (JSON, every field optional):
//
//	{
//	  "sample_rate": 1.0,                 // 0..1, share of requests logged
//	  "request_headers": ["user-agent"],  // logged as "req.<name>"
//	  "response_headers": ["content-type"], // logged as "resp.<name>"
//	  "redact_headers": ["x-api-key"]     // logged as "[redacted]"
//	}
//
// authorization, proxy-authorization, cookie and set-cookie are always
// redacted. Metrics: logging_requests_total, logging_sampled_out_total.
package main
