#!/bin/sh
# wasmfleet's quick start, from a fresh clone to one request the auth filter
# refuses (401) and one it lets through (200), on loopback, with no Envoy and
# no other server: the stand-in data plane answers with a built-in echo
# upstream. README.md's "Quick start" shows these same lines, and
# e2e/quickstart runs this file as written (on free ports, through the four
# addresses below) and checks what it prints. The control plane and the
# stand-in keep running when it ends; it prints how to stop them.
set -eu
XDS=${XDS:-127.0.0.1:18000}         # xDS, for Envoy or the stand-in
MODULES=${MODULES:-127.0.0.1:18001} # module bytes (remote code)
ADMIN=${ADMIN:-127.0.0.1:18002}     # admin API, status page and metrics
INGRESS=${INGRESS:-127.0.0.1:10000} # where requests come in

# 1. Build the CLI, the stand-in and the auth filter (a cold Go build cache
#    takes a few minutes; each step says what it is doing).
echo "building wasmfleet and the stand-in..."
go build -o bin/ ./cmd/wasmfleet ./e2e/cmd/standin
bin/wasmfleet build filters/auth

# 2. Start the control plane (embedded default: it watches ./filters.d) and
#    a stand-in Envoy whose upstream is the built-in echo.
mkdir -p filters.d
bin/wasmfleet serve --xds "$XDS" --modules "$MODULES" --admin "$ADMIN" >serve.log 2>&1 &
serve=$!
bin/standin -xds "$XDS" -node edge-1 -listen ingress="$INGRESS" -echo >standin.log 2>&1 &
echo "control plane and stand-in started (logs: serve.log, standin.log); stop them with: kill $serve $!"

# await STATUS [API_KEY]: request http://$INGRESS/hello until it answers
# STATUS (a change reaches the node within a second or two), then say so.
await() {
	for _ in $(seq 60); do
		got=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: ${2:-}" "http://$INGRESS/hello" || true)
		[ "$got" = "$1" ] && break
		sleep 1
	done
	echo "GET /hello${2:+ with x-api-key: $2} -> $got"
	[ "$got" = "$1" ]
}

# 3. No filter yet: the echo upstream answers.
await 200

# 4. Deploy auth with one API key (its settings hold only the key's SHA-256).
cat >filters.d/auth.yaml <<YAML
required: true
config:
  api_keys:
    keys:
      - name: demo
        sha256: $(printf demo-key | sha256sum | cut -d' ' -f1)
YAML
cp bin/filters/auth.wasm filters.d/

# 5. Without the key: 401. With it: 200, through auth to the echo upstream.
await 401
await 200 demo-key
curl -s -H 'x-api-key: demo-key' "http://$INGRESS/hello"

# 6. Which node runs which version.
WASMFLEET_ADMIN=$ADMIN bin/wasmfleet status
