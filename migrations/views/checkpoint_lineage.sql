-- Every (checkpoint, ancestor) pair with its distance: depth 0 is the checkpoint itself.
-- SELECT * FROM checkpoint_lineage WHERE checkpoint_id = 42 ORDER BY depth;
CREATE OR REPLACE VIEW checkpoint_lineage AS
WITH RECURSIVE lineage (checkpoint_id, ancestor_id, parent_id, run_id, uri, step, round, depth) AS (
  SELECT c.id, c.id, c.parent_id, c.run_id, c.uri, c.step, c.round, 0
    FROM checkpoints c
  UNION ALL
  SELECT l.checkpoint_id, p.id, p.parent_id, p.run_id, p.uri, p.step, p.round, l.depth + 1
    FROM lineage l
    JOIN checkpoints p ON p.id = l.parent_id
)
SELECT checkpoint_id, ancestor_id, parent_id, run_id, uri, step, round, depth FROM lineage;
GRANT SELECT ON checkpoint_lineage TO temper_analyst;
