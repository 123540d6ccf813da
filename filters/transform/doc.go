// Command transform is a proxy-wasm HTTP filter that rewrites requests and
// responses: header add/set/remove/rename, a ":path" prefix rewrite, and
// JSON body edits (set/remove/rename of dotted paths into objects).
//
// Configuration (JSON):
//
//	{
//	  "request": {
//	    "headers": {
//	      "remove": ["x-debug"],
//	      "rename": [{"from": "x-user", "to": "x-client-user"}],
//	      "set":    [{"name": "x-env", "value": "prod"}],
//	      "add":    [{"name": "x-via", "value": "wasmfleet"}]
//	    },
//	    "path_prefix": {"from": "/api/v1/", "to": "/v1/"},
//	    "body": {
//	      "rename": [{"from": "user.name", "to": "user.login"}],
//	      "remove": ["debug"],
//	      "set":    [{"path": "meta.source", "value": "edge"}]
//	    }
//	  },
//	  "response": {"headers": {...}, "body": {...}},
//	  "max_body_bytes": 1048576,
//	  "on_body_error": "reject"
//	}
//
// Rules run in the order remove, rename, set, add (headers) and rename,
// remove, set (bodies), each list in its order. A header rename moves the
// first value of a repeated header.
//
// Bodies are buffered only in a direction that has body rules. There the
// headers go on at once without content-length (the edited length is not
// known yet; HTTP/1.1 then sends the body chunked) and the body is buffered
// (Pause from the body callback) until it has all arrived. The filter does
// not hold the headers: on Envoy a Pause from a headers callback stops the
// body as well unless the plugin config sets
// allow_on_headers_stop_iteration, and the request would hang. A body
// larger than max_body_bytes, or one that is not JSON, is either rejected
// (on_body_error "reject") or forwarded untouched ("pass"), counted in
// transform_body_passed_total. A rejected request gets a local reply, 413
// or 400 with a JSON error body. For a rejected response the filter asks
// for a 502 reply too, but Envoy sends it only if no response headers have
// reached the client yet (another filter still holds them); otherwise it
// resets the stream and the client sees the response cut off. An empty
// body is forwarded as it is. Edited bodies are written compact, member
// order kept; numbers keep their exact text.
package main
