//! Cities' maps (`kendali city import`), kept as the screens read them.

use deadpool_postgres::Pool;

use super::StoreError;
use crate::domain::geometry::CityMap;
use crate::domain::Zone;

/// Keeps `map` for its city, replacing an earlier import.
pub async fn save(pool: &Pool, map: &CityMap, by: &str) -> Result<(), StoreError> {
    let client = pool.get().await?;
    let value = serde_json::to_value(map).map_err(|e| StoreError::Setup(e.to_string()))?;
    client
        .execute(
            "INSERT INTO city_maps (city, map, imported, imported_by) VALUES ($1, $2, now(), $3) \
             ON CONFLICT (city) DO UPDATE SET map = EXCLUDED.map, imported = now(), imported_by = EXCLUDED.imported_by",
            &[&map.city, &value, &by],
        )
        .await?;
    Ok(())
}

/// Every imported city's map, as the screens read a scenario's, the most
/// recently imported first.
pub async fn all(pool: &Pool) -> Result<Vec<serde_json::Value>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT map FROM city_maps ORDER BY imported DESC, city",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Each imported city's time zone (its city file's), for the cities the
/// settings do not give one.
pub async fn zones(pool: &Pool) -> Result<Vec<(String, Zone)>, StoreError> {
    let client = pool.get().await?;
    let rows = client
        .query("SELECT city, map->>'time_zone' FROM city_maps", &[])
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let zone: Option<String> = r.get(1);
            Some((r.get(0), zone?.parse().ok()?))
        })
        .collect())
}
