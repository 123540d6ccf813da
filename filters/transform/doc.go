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
// filter holds the headers (Pause) until the whole body has arrived, so it
// can still answer with an error and can set content-length to the
// rewritten body's length; a body larger than max_body_bytes, or one that
// is not JSON, is either rejected (on_body_error "reject": 413 or 400 for a
// request, 502 for a response, with a JSON error body) or forwarded
// untouched ("pass"), counted in transform_body_passed_total. An empty body
// is forwarded as it is. Edited bodies are written compact, member order
// kept; numbers keep their exact text.
package main
