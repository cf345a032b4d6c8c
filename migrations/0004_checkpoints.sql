-- Checkpoints with parent -> child lineage (parent_id NULL: trained from the base model).
CREATE TABLE checkpoints (
  id          BIGSERIAL PRIMARY KEY,
  run_id      BIGINT NOT NULL REFERENCES runs (id),
  parent_id   BIGINT REFERENCES checkpoints (id),
  job_id      BIGINT REFERENCES jobs (id),
  uri         TEXT NOT NULL,
  step        BIGINT NOT NULL DEFAULT 0,
  round       INTEGER NOT NULL DEFAULT 0,
  metrics     JSONB NOT NULL DEFAULT '{}',
  created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX checkpoints_run_idx ON checkpoints (run_id);
CREATE INDEX checkpoints_parent_idx ON checkpoints (parent_id);
