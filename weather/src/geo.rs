//! Warning areas on the ground: CAP polygons and circles, and the tests a site's position is
//! put to (point in polygon, great-circle distance).

use serde::Serialize;

/// Mean Earth radius used for distances (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A position in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

impl LatLon {
    /// A position, or `None` where a coordinate is not finite or out of range.
    pub fn new(lat: f64, lon: f64) -> Option<LatLon> {
        if lat.is_finite()
            && lon.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon)
        {
            Some(LatLon { lat, lon })
        } else {
            None
        }
    }
}

/// A CAP polygon: the vertices in order; the ring is closed (the last vertex joins the first).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Polygon {
    pub vertices: Vec<LatLon>,
}

/// A CAP circle: a centre and a radius in kilometres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Circle {
    pub center: LatLon,
    pub radius_km: f64,
}

/// Why a CAP `<polygon>` or `<circle>` text is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeoError {
    #[error("coordinate pair {0:?} is not \"lat,lon\"")]
    BadPair(String),
    #[error("coordinate {0:?} is out of range")]
    OutOfRange(String),
    #[error("a polygon needs at least 3 distinct vertices, found {0}")]
    TooFewVertices(usize),
    #[error("a polygon has {found} vertices, more than the limit of {limit}")]
    TooManyVertices { found: usize, limit: usize },
    #[error("circle {0:?} is not \"lat,lon radius_km\"")]
    BadCircle(String),
    #[error("circle radius {0:?} is not a non-negative number of kilometres")]
    BadRadius(String),
}

fn parse_pair(s: &str) -> Result<LatLon, GeoError> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| GeoError::BadPair(clip(s)))?;
    let lat: f64 = lat.trim().parse().map_err(|_| GeoError::BadPair(clip(s)))?;
    let lon: f64 = lon.trim().parse().map_err(|_| GeoError::BadPair(clip(s)))?;
    LatLon::new(lat, lon).ok_or_else(|| GeoError::OutOfRange(clip(s)))
}

fn clip(s: &str) -> String {
    s.chars().take(48).collect()
}

impl Polygon {
    /// Parse CAP polygon text: `"lat,lon lat,lon ..."`, pairs separated by whitespace. CAP
    /// asks for a closed ring of at least four pairs; a ring that is not closed explicitly is
    /// closed implicitly, and at least three distinct vertices are required.
    pub fn parse_cap(text: &str, max_vertices: usize) -> Result<Polygon, GeoError> {
        let mut vertices = Vec::new();
        for pair in text.split_whitespace() {
            if vertices.len() >= max_vertices {
                let found = text.split_whitespace().count();
                return Err(GeoError::TooManyVertices {
                    found,
                    limit: max_vertices,
                });
            }
            vertices.push(parse_pair(pair)?);
        }
        if vertices.len() > 1 && vertices.first() == vertices.last() {
            vertices.pop();
        }
        let mut distinct = vertices.clone();
        distinct.sort_by(|a, b| a.lat.total_cmp(&b.lat).then(a.lon.total_cmp(&b.lon)));
        distinct.dedup();
        if distinct.len() < 3 {
            return Err(GeoError::TooFewVertices(distinct.len()));
        }
        Ok(Polygon { vertices })
    }

    /// Whether `p` lies inside the polygon (even-odd rule, on the plane of lon/lat degrees;
    /// a point exactly on an edge counts as inside). Polygons that cross the antimeridian
    /// are not supported.
    pub fn contains(&self, p: LatLon) -> bool {
        let v = &self.vertices;
        let n = v.len();
        if n < 3 {
            return false;
        }
        let mut inside = false;
        let mut j = n - 1;
        for i in 0..n {
            let (a, b) = (v[i], v[j]);
            if on_segment(p, a, b) {
                return true;
            }
            if (a.lat > p.lat) != (b.lat > p.lat) {
                let x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat);
                if p.lon < x {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }
}

fn on_segment(p: LatLon, a: LatLon, b: LatLon) -> bool {
    let cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon);
    if cross.abs() > 1e-12 {
        return false;
    }
    p.lon >= a.lon.min(b.lon)
        && p.lon <= a.lon.max(b.lon)
        && p.lat >= a.lat.min(b.lat)
        && p.lat <= a.lat.max(b.lat)
}

impl Circle {
    /// Parse CAP circle text: `"lat,lon radius_km"`.
    pub fn parse_cap(text: &str) -> Result<Circle, GeoError> {
        let mut parts = text.split_whitespace();
        let (Some(center), Some(radius), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(GeoError::BadCircle(clip(text)));
        };
        let center = parse_pair(center)?;
        let radius_km: f64 = radius
            .parse()
            .map_err(|_| GeoError::BadRadius(clip(radius)))?;
        if !radius_km.is_finite() || radius_km < 0.0 {
            return Err(GeoError::BadRadius(clip(radius)));
        }
        Ok(Circle { center, radius_km })
    }

    /// Whether `p` lies within the circle (great-circle distance, inclusive).
    pub fn contains(&self, p: LatLon) -> bool {
        haversine_km(self.center, p) <= self.radius_km
    }
}

/// Great-circle distance in kilometres (haversine, spherical Earth).
pub fn haversine_km(a: LatLon, b: LatLon) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    #[test]
    fn beijing_to_shanghai_is_about_1067_km() {
        let d = haversine_km(ll(39.9042, 116.4074), ll(31.2304, 121.4737));
        assert!((d - 1067.0).abs() < 5.0, "{d}");
        assert_eq!(haversine_km(ll(10.0, 10.0), ll(10.0, 10.0)), 0.0);
    }

    #[test]
    fn polygon_parse_and_contains() {
        let p = Polygon::parse_cap(
            "36.0,114.0 36.0,115.0 37.0,115.0 37.0,114.0 36.0,114.0",
            100,
        )
        .unwrap();
        assert_eq!(p.vertices.len(), 4);
        assert!(p.contains(ll(36.5, 114.5)));
        assert!(p.contains(ll(36.0, 114.5)), "edge counts as inside");
        assert!(!p.contains(ll(35.9, 114.5)));
        assert!(!p.contains(ll(36.5, 115.1)));
        // A concave "C" shape: the notch is outside.
        let c = Polygon::parse_cap("0,0 0,3 1,3 1,1 2,1 2,3 3,3 3,0", 100).unwrap();
        assert!(c.contains(ll(0.5, 2.0)));
        assert!(!c.contains(ll(1.5, 2.0)));
        assert!(c.contains(ll(1.5, 0.5)));
    }

    #[test]
    fn polygon_errors() {
        assert!(matches!(
            Polygon::parse_cap("", 10),
            Err(GeoError::TooFewVertices(0))
        ));
        assert!(matches!(
            Polygon::parse_cap("1,1 2,2 1,1", 10),
            Err(GeoError::TooFewVertices(2))
        ));
        assert!(matches!(
            Polygon::parse_cap("1,1 2,2 x,3", 10),
            Err(GeoError::BadPair(_))
        ));
        assert!(matches!(
            Polygon::parse_cap("1,1 2,2 95,3", 10),
            Err(GeoError::OutOfRange(_))
        ));
        assert!(matches!(
            Polygon::parse_cap("1,1 2,2 3,3 4,4", 3),
            Err(GeoError::TooManyVertices { found: 4, limit: 3 })
        ));
        assert!(Polygon::parse_cap("+41.12,-117.61 +41.06,-117.47 +41.04,-117.47", 10).is_ok());
    }

    #[test]
    fn circle_parse_and_contains() {
        let c = Circle::parse_cap("-35.3888,147.0598 25.0").unwrap();
        assert_eq!(c.radius_km, 25.0);
        assert!(c.contains(ll(-35.3888, 147.0598)));
        // 0.2 degrees of latitude is about 22.2 km.
        assert!(c.contains(ll(-35.5888, 147.0598)));
        assert!(!c.contains(ll(-35.6388, 147.0598)));
        assert!(Circle::parse_cap("1,1").is_err());
        assert!(Circle::parse_cap("1,1 -3").is_err());
        assert!(Circle::parse_cap("1,1 3 4").is_err());
        assert!(Circle::parse_cap("1,1 NaN").is_err());
    }
}
