-- Kendali schema v8: a real city's map (`kendali city import`): its districts
-- and roads from GeoJSON, checked and simplified, in the shape the screens
-- and the unit router read (the simulator's scenario has its own).

CREATE TABLE city_maps (
    city        text        PRIMARY KEY,
    map         jsonb       NOT NULL,
    imported    timestamptz NOT NULL DEFAULT now(),
    imported_by text        NOT NULL
);
