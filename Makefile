# wasmfleet's build. `make check` is the README's test command and what CI runs.

GO      ?= go
FILTERS ?= bin/filters

.PHONY: check fmt vet tidy test bench bench-scale filters serve

## check: formatting, vet, go.mod tidiness, and every test under the race detector
check: fmt vet tidy test

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

tidy:
	$(GO) mod tidy -diff

# One test binary at a time (-p 1): the end-to-end packages each run a
# control plane, stand-in Envoys and Wasm VMs under the race detector, and
# two of them side by side on a 2-core machine slow module loads past
# Envoy's 15 s initial_fetch_timeout, which the stand-in models.
test:
	$(GO) test -race -p 1 -timeout 45m ./...

## bench: every benchmark, once, with memory stats
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x ./...

## bench-scale: file write -> snapshot latency, and fleet convergence at 1,000 and
## 10,000 simulated nodes with the default delivery (inline modules, three
## filters, one changed), then 1,000 nodes with remote code, beside a bare
## go-control-plane server serving the same resources to the same fleet (the
## fleet runs in a child process so the control plane's CPU and memory are
## measured alone); several minutes
bench-scale:
	$(GO) test -run '^$$' -bench 'FileToSnapshot' -benchtime 20x ./e2e/scale/
	$(GO) test -run '^$$' -bench 'EnableFilter' -benchtime 10x ./e2e/scale/
	$(GO) test -run '^$$' -bench '^BenchmarkFleetConvergence$$/^nodes=1000$$' -benchtime 5x ./e2e/scale/
	$(GO) test -run '^$$' -bench '^BenchmarkFleetConvergence$$/^nodes=10000$$' -benchtime 3x ./e2e/scale/
	$(GO) test -run '^$$' -bench '^BenchmarkFleetConvergence(Remote|Bare)$$/^nodes=1000$$' -benchtime 5x ./e2e/scale/

## filters: build every filter under filters/ to $(FILTERS)/NAME.wasm + NAME.manifest.json
filters:
	$(GO) run ./cmd/wasmfleet build --out-dir $(FILTERS)

## serve: run the control plane on the embedded default
serve:
	$(GO) run ./cmd/wasmfleet serve
