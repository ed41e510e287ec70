# Two commands: `make run` and `make test`. Everything else is a helper of theirs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DIGITS_DATA_DIR ?= var
export PORT ?= 8000
export PYTHONUNBUFFERED := 1

.PHONY: run test install lint bench bench-training

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,s3]'
	@touch $(STAMP)

install: $(STAMP)

# Venv, dependencies, migrations, an active model, then web (and later worker
# and an embedded Redis) on http://127.0.0.1:$(PORT). A second run reuses it all.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py check_storage --fix
	$(BIN)/python manage.py ensure_model
	$(BIN)/python manage.py serve

# The whole suite (lint, unit, API, training, browser, the cluster) on SQLite,
# then the whole suite again on a private PostgreSQL when its server is
# installed (.ci/run installs it) and DATABASE_URL does not already name one.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	@if [ -n "$$DATABASE_URL" ]; then \
	  echo "DATABASE_URL is set: the suite ran on it; no second run"; \
	elif ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  deploy/with-postgres.sh $(BIN)/python -m pytest; \
	else \
	  echo "PostgreSQL's server is not installed: the second run, on PostgreSQL, was skipped"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Serving and load figures (minutes); the training ones take most of an hour.
bench: install
	$(BIN)/python benchmarks/predict_latency.py
	$(BIN)/python benchmarks/predict_throughput.py
	$(BIN)/python benchmarks/web_footprint.py
	$(BIN)/python benchmarks/preprocessing_stages.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/hostile_load.py

bench-training: install
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/stroke_normalisation.py
