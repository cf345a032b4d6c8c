-- The jobs table churns: every lease and completion rewrites rows that the dispatcher's partial
-- index still points at until vacuum. Analyze and vacuum it after 1% change rather than 10-20%,
-- so the dispatch scan keeps its ordered index plan and walks few dead entries.
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.01,
                      autovacuum_vacuum_threshold = 200, autovacuum_analyze_threshold = 200);
