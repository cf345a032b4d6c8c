-- One row per run: state, progress in jobs, attempts, latest loss and newest checkpoint.
CREATE OR REPLACE VIEW run_summary AS
SELECT r.id,
       r.name,
       r.state,
       r.round,
       r.total_rounds,
       r.created_at,
       r.updated_at,
       r.updated_at - r.created_at AS elapsed,
       count(j.id) AS jobs_total,
       count(j.id) FILTER (WHERE j.state = 'succeeded') AS jobs_succeeded,
       count(j.id) FILTER (WHERE j.state = 'failed') AS jobs_failed,
       count(j.id) FILTER (WHERE j.state IN ('pending', 'leased', 'running')) AS jobs_active,
       coalesce(sum(j.attempts), 0) AS attempts,
       (SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.name = 'loss'
         ORDER BY m.step DESC, m.at DESC LIMIT 1) AS last_loss,
       (SELECT c.id FROM checkpoints c WHERE c.run_id = r.id ORDER BY c.id DESC LIMIT 1)
         AS latest_checkpoint_id,
       r.error
  FROM runs r
  LEFT JOIN jobs j ON j.run_id = r.id
 GROUP BY r.id;
GRANT SELECT ON run_summary TO temper_analyst;
