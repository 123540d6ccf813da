# wasmfleet's build. `make check` is the README's test command and what CI runs.

GO      ?= go
FILTERS ?= bin/filters

.PHONY: check fmt vet tidy test bench filters serve

## check: formatting, vet, go.mod tidiness, and every test under the race detector
check: fmt vet tidy test

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

tidy:
	$(GO) mod tidy -diff

test:
	$(GO) test -race -timeout 30m ./...

## bench: every benchmark, once, with memory stats
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x ./...

## filters: build every filter under filters/ to $(FILTERS)/NAME.wasm + NAME.manifest.json
filters:
	$(GO) run ./cmd/wasmfleet build -o $(FILTERS)

## serve: run the control plane on the embedded default
serve:
	$(GO) run ./cmd/wasmfleet serve
