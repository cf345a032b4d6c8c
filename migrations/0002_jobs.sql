-- Jobs: the unit of work a worker leases. epoch is the fencing token of the current lease.
CREATE SEQUENCE job_epoch_seq;
CREATE TABLE jobs (
  id                BIGSERIAL PRIMARY KEY,
  run_id            BIGINT NOT NULL REFERENCES runs (id),
  kind              TEXT NOT NULL CHECK (kind IN ('train', 'generate', 'eval')),
  stage             TEXT NOT NULL,
  round             INTEGER NOT NULL DEFAULT 0,
  state             TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'leased', 'running', 'succeeded', 'failed', 'cancelled')),
  gpus              INTEGER NOT NULL DEFAULT 0,
  gpu_memory_mb     BIGINT NOT NULL DEFAULT 0,
  cpu_cores         INTEGER NOT NULL DEFAULT 0,
  priority          INTEGER NOT NULL DEFAULT 0,
  attempts          INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL DEFAULT 3,
  epoch             BIGINT NOT NULL DEFAULT 0,
  worker_id         TEXT NOT NULL DEFAULT '',
  payload           JSONB NOT NULL DEFAULT '{}',
  result            JSONB,
  failure_class     TEXT NOT NULL DEFAULT '',
  error             TEXT NOT NULL DEFAULT '',
  gang_id           BIGINT NOT NULL DEFAULT 0,
  rank              INTEGER NOT NULL DEFAULT 0,
  world_size        INTEGER NOT NULL DEFAULT 1,
  rendezvous        TEXT,  -- base64 of the gang payload (on rank 0)
  cancel_requested  BOOLEAN NOT NULL DEFAULT false,
  created_at        TIMESTAMPTZ NOT NULL,
  not_before        TIMESTAMPTZ NOT NULL,
  lease_expires_at  TIMESTAMPTZ,
  started_at        TIMESTAMPTZ,
  finished_at       TIMESTAMPTZ,
  UNIQUE (run_id, stage, rank)
);
-- The dispatcher's scan: ready pending jobs by priority, then age.
CREATE INDEX jobs_pending_idx ON jobs (priority DESC, id) WHERE state = 'pending';
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state IN ('leased', 'running');
CREATE INDEX jobs_run_idx ON jobs (run_id);
CREATE INDEX jobs_gang_idx ON jobs (gang_id) WHERE gang_id <> 0;
