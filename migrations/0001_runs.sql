-- Runs: one row per submitted run; the config is the validated RunConfig as JSON.
CREATE TABLE runs (
  id               BIGSERIAL PRIMARY KEY,
  name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
  state            TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
  config           JSONB NOT NULL,
  idempotency_key  TEXT UNIQUE,
  priority         INTEGER NOT NULL DEFAULT 0,
  total_rounds     INTEGER NOT NULL DEFAULT 0,
  round            INTEGER NOT NULL DEFAULT 0,
  cancel_requested BOOLEAN NOT NULL DEFAULT false,
  error            TEXT NOT NULL DEFAULT '',
  created_at       TIMESTAMPTZ NOT NULL,
  updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX runs_state_idx ON runs (state);
CREATE INDEX runs_name_idx ON runs (name text_pattern_ops);
