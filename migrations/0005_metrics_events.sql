-- Metrics (run, step, name, value) and the run event log that `temper watch` follows.
CREATE TABLE metrics (
  run_id  BIGINT NOT NULL REFERENCES runs (id),
  job_id  BIGINT,
  step    BIGINT NOT NULL,
  name    TEXT NOT NULL,
  value   DOUBLE PRECISION NOT NULL,
  at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX metrics_run_name_step_idx ON metrics (run_id, name, step);

CREATE TABLE run_events (
  id        BIGSERIAL PRIMARY KEY,
  run_id    BIGINT NOT NULL REFERENCES runs (id),
  job_id    BIGINT NOT NULL DEFAULT 0,
  at        TIMESTAMPTZ NOT NULL,
  type      TEXT NOT NULL,
  message   TEXT NOT NULL DEFAULT '',
  progress  DOUBLE PRECISION,
  metrics   JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX run_events_run_idx ON run_events (run_id, id);
