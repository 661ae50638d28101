-- Kendali schema v11: replay checkpoints. Every database.checkpoint_every_s
-- the node that runs the rules stores what the day's events had built by
-- then (calls, the day's counters, feeds, event ids seen; the state's
-- DayPart as JSON): a replay starts from the nearest one before its moment
-- and reads only the events after it, not the whole day. A plain table on
-- both flavours (24 rows a day by default, about 2 MB each for a day of
-- 50,000 call events); kept database.checkpoint_retention_days.
CREATE TABLE IF NOT EXISTS replay_checkpoints (
    day_start timestamptz NOT NULL,
    at        timestamptz NOT NULL,
    written   timestamptz NOT NULL DEFAULT now(),
    writer    text        NOT NULL,
    calls     integer     NOT NULL,
    state     bytea       NOT NULL,
    PRIMARY KEY (day_start, at)
);

-- And a node taken out of a shared group for good (`kendali nodes forget`):
-- its last rows are added to the rollup and its watermark no longer holds
-- history's back. It returns to the count if it starts again.
ALTER TABLE store_writers ADD COLUMN IF NOT EXISTS retired_at timestamptz;
