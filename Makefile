# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
WORKERS ?=
# test processes: one per core; tests sharing a module fixture share a worker (conftest.py)
TEST_WORKERS ?= auto

.PHONY: demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[qa,publish,web]'
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,dev,qa,diffusion,publish,web]'
	# older diffusion extras pulled in spandrel and PyPI's CUDA torchvision, which breaks
	# `import diffusers` beside a CPU torch; the tests check the extra's own environment
	$(BIN)/python -m pip uninstall -q -y spandrel torchvision
	# the reference watermark decoder, only to check ours; its declared needs (torch,
	# opencv-python) are covered by the diffusion and qa extras
	$(BIN)/python -m pip install -q --no-deps invisible-watermark==0.2.0
	@touch $@ $(VENV)/.core

## demo: install into .venv and run the example campaign end to end, publishing included
demo: $(VENV)/.core
	@scripts/system-deps.sh
	@[ -f $(DEMO)/bildwerk.yaml ] || $(BIN)/bildwerk init $(DEMO) --name acme
	$(BIN)/bildwerk run $(DEMO)/campaigns/summer-sale.yaml --workspace $(DEMO) $(if $(WORKERS),--workers $(WORKERS))
	@# the demo stands in for the reviewer; in real use a person approves (bildwerk review)
	$(BIN)/bildwerk approve --run latest --include-review --by "make demo" --workspace $(DEMO)
	@[ -f $(DEMO)/keys/dev-chain.pem ] || $(BIN)/bildwerk keys dev-init --workspace $(DEMO)
	$(BIN)/bildwerk publish latest --to site --workspace $(DEMO)
	@echo
	@echo "Results: $(DEMO)/runs/ (newest run folder: manifest.json, report.html, renditions/)"
	@echo "Open the contact sheet: $$(ls -td $(DEMO)/runs/*/ | head -1)report.html"
	@echo "Published site: $(DEMO)/public/ - serve it with: $(BIN)/python -m http.server -d $(DEMO)/public 8000"
	@echo "  then open http://localhost:8000/ ; check a file with: $(BIN)/bildwerk verify FILE -w $(DEMO)"
	@echo "Delivery profiles (README: Delivery profiles): web_hero and the Instagram channels are"
	@echo "  'public' - lean files (rights + AI source type, under 640 px just the licence URL and"
	@echo "  source type; Content Credentials in a .c2pa sidecar; the invisible mark on full-size"
	@echo "  JPEGs); display_mrec is 'ads' (credentials embedded);"
	@echo "  review previews are 'internal' (the whole generation record). Change them under"
	@echo "  delivery: in $(DEMO)/bildwerk.yaml."
	@echo "Web app: $(BIN)/bildwerk users add you --role admin -w $(DEMO), then"
	@echo "  $(BIN)/bildwerk serve -w $(DEMO) and open http://127.0.0.1:8080/ (review with the"
	@echo "  keyboard: j/k, a, r, ? for all keys; the API and its docs: http://127.0.0.1:8080/api/docs)"

## test: install test dependencies (system packages too) and run lint, types and tests
test: $(VENV)/.test
	@scripts/system-deps.sh --test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck:
	$(BIN)/mypy

## bench: reproducible speed measurements (medians and ratios against baselines)
bench: $(VENV)/.core
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info src/*.egg-info
