-- Kendali schema v10: which node stored each telemetry row. With several
-- nodes on one database (mqtt.shared_group) each adds to the per-minute
-- rollup the rows it stored; a node that stopped before adding some adds
-- them when it starts again, and only its own: a recomputation of whole
-- minutes would count again what other nodes still hold to add, or undo
-- what they added. Each node's watermark is its own row of rollup_state
-- ('atcs_minute@{client_id}'). Rows of one node alone keep NULL.
CREATE TABLE IF NOT EXISTS store_writers (
    id        smallserial PRIMARY KEY,
    client_id text        NOT NULL UNIQUE
);
ALTER TABLE atcs_state ADD COLUMN IF NOT EXISTS writer smallint;
