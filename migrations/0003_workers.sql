-- Workers: registered capabilities and liveness.
CREATE TABLE workers (
  id              TEXT PRIMARY KEY,
  hostname        TEXT NOT NULL DEFAULT '',
  kinds           TEXT[] NOT NULL,
  gpus            INTEGER NOT NULL DEFAULT 0,
  gpu_memory_mb   BIGINT NOT NULL DEFAULT 0,
  cpu_cores       INTEGER NOT NULL DEFAULT 0,
  gpu_models      TEXT[] NOT NULL DEFAULT '{}',
  state           TEXT NOT NULL DEFAULT 'idle' CHECK (state IN ('idle', 'busy', 'lost')),
  registered_at   TIMESTAMPTZ NOT NULL,
  last_heartbeat  TIMESTAMPTZ NOT NULL
);
