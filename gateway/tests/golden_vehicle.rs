//! Golden tests of the vehicle pack (issue 19) through `gateway replay`: overspeed held for its
//! time by vehicle class, fatigue (continuous driving with a rest reset, driving within 24 h)
//! and night driving of passenger buses, all in event time. Expected events are written by
//! hand from `vehicle.toml`. [`golden::T0`] is 10:00 Beijing time.

mod golden;

use golden::{after, ev, of_rule, t, Script, T0};
use serde_json::{json, Value};

const SITE: &str = "trans-01";

/// A vehicle's position point of `class`, reporting every `interval_ms`.
fn vehicle(point: &str, class: &str, interval_ms: u64) -> Value {
    json!({"point": point, "quantity": "position", "unit": "wgs84",
           "tags": {"vehicle_class": class}, "interval_ms": interval_ms})
}

fn pos(speed: f64) -> Value {
    json!({"lat": 34.7, "lon": 113.6, "speed_kmh": speed})
}

/// Readings of several vehicles, put into the script in event-time order (as terminals
/// report them): a reading behind the replay's clock would find its deadlines fired already.
#[derive(Default)]
struct Reports(Vec<(String, String, f64)>);

impl Reports {
    /// `point` at `t0 + secs` with `speed`, for each `(secs, speed)`.
    fn drive(&mut self, point: &str, t0: &str, readings: &[(i64, f64)]) {
        for &(secs, speed) in readings {
            self.0.push((after(t0, secs), point.to_string(), speed));
        }
    }

    /// The site's birth with `vehicles`, then the reports, through `gateway replay`.
    async fn replay(mut self, vehicles: Value) -> Vec<Value> {
        let mut s = Script::default();
        s.birth_of(SITE, "transport", vehicles);
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        for (ts, point, speed) in self.0 {
            s.read(SITE, &point, &ts, pos(speed));
        }
        s.replay().await
    }
}

/// The expected events of `rule` about vehicle `point`: (event, severity, speed, threshold,
/// time as the output writes it).
fn cause<'a>(
    rule: &'a str,
    point: &'a str,
) -> impl Fn(&str, &str, f64, Option<f64>, &str) -> String + 'a {
    move |event, severity, speed, th, at| {
        let at: (&str, &[&str]) = (at, &[]);
        ev(event, rule, SITE, point, severity, pos(speed), th, at)
    }
}

/// `rule` raised nothing.
fn none_of(events: &[Value], rule: &str) {
    assert_eq!(of_rule(events, SITE, rule), Vec::<String>::new(), "{rule}");
}

/// `(start, start + step, ...)` up to `end` inclusive, at `speed`.
fn every(start: i64, end: i64, step: usize, speed: f64) -> Vec<(i64, f64)> {
    (start..=end).step_by(step).map(|x| (x, speed)).collect()
}

#[tokio::test]
async fn a_dangerous_goods_truck_held_past_60_and_80_km_h_and_back() {
    let mut r = Reports::default();
    // V1: 70 km/h from 5 s (past 60, held 10 s -> warning at 15 s), 85 from 20 s (past 80,
    // held 10 s -> alarm at 30 s), 50 from 40 s (under both levels' clear values: cleared; the
    // clear names the open level's, 80 - 5).
    let v1 = [
        (0, 50.0),
        (5, 70.0),
        (10, 70.0),
        (15, 70.0),
        (20, 85.0),
        (25, 85.0),
    ];
    r.drive("V1", T0, &v1);
    r.drive("V1", T0, &[(30, 85.0), (35, 85.0), (40, 50.0)]);
    // V2 (freight): 85 km/h is within its limit; 110 for 5 s only is not held long enough.
    r.drive("V2", T0, &[(0, 85.0), (10, 110.0), (15, 90.0), (20, 90.0)]);
    let fleet = json!([
        vehicle("V1", "dangerous_goods", 5000),
        vehicle("V2", "freight", 5000)
    ]);
    let events = r.replay(fleet).await;
    let rule = "vehicle.overspeed.dangerous_goods";
    let v1 = cause(rule, "V1");
    let want = vec![
        v1("raised", "warning", 70.0, Some(60.0), &t(15)),
        v1("escalated", "alarm", 85.0, Some(80.0), &t(30)),
        v1("cleared", "alarm", 50.0, Some(75.0), &t(40)),
    ];
    assert_eq!(of_rule(&events, SITE, rule), want);
    none_of(&events, "vehicle.overspeed.freight");
}

#[tokio::test]
async fn four_hours_without_a_rest_then_eight_hours_within_24_h() {
    let mut r = Reports::default();
    // 10:00 to 14:00 Beijing time: driving, a report every 10 min.
    r.drive("V3", T0, &every(0, 14_400, 600, 60.0));
    // Standing from 14:10 (15 000 s): the 20-minute rest completes at 16 200 s.
    r.drive("V3", T0, &every(15_000, 16_200, 600, 0.0));
    // Driving again from 16 800 s; standing from 30 900 s: driven 15 000 + 14 100 s = 8 h 5 min.
    r.drive("V3", T0, &every(16_800, 30_600, 600, 60.0));
    r.drive("V3", T0, &[(30_900, 0.0), (90_000, 0.0)]);
    let events = r.replay(json!([vehicle("V3", "freight", 600_000)])).await;
    let day = cause("vehicle.fatigue.day", "V3");
    let th = Some(14_400_000.0);
    let want = vec![
        day("raised", "alarm", 60.0, th, &t(14_400)),
        day("cleared", "alarm", 0.0, th, &t(16_200)),
    ];
    assert_eq!(of_rule(&events, SITE, "vehicle.fatigue.day"), want);
    // 8 h reached at 30 600 s (15 000 + 13 800); it falls below 8 h once the first 300.001 s
    // of driving have left the 24 h window (ms resolution).
    let daily = cause("vehicle.fatigue", "V3");
    let th = Some(28_800_000.0);
    let want = vec![
        daily("raised", "alarm", 60.0, th, &t(30_600)),
        daily("cleared", "alarm", 0.0, th, "2026-11-29T02:05:00.001Z"),
    ];
    assert_eq!(of_rule(&events, SITE, "vehicle.fatigue"), want);
    none_of(&events, "vehicle.fatigue.night");
}

#[tokio::test]
async fn a_passenger_bus_driving_between_02_00_and_05_00_beijing_time() {
    let mut r = Reports::default();
    // 01:50 Beijing time (17:50Z the day before T0's date).
    let t0 = "2026-11-27T17:50:00Z";
    // V4 drives 01:50-02:15 (raised a minute after 02:00), stops at 02:15.
    r.drive("V4", t0, &every(0, 1_470, 30, 50.0));
    r.drive("V4", t0, &[(1_500, 0.0)]);
    // V5 drives 04:50-05:10: raised at 04:51, cleared at the first report at 05:00.
    let t5 = "2026-11-27T20:50:00Z";
    r.drive("V5", t5, &every(0, 1_200, 30, 50.0));
    // V6 (freight) drives at 02:30: not a passenger bus.
    r.drive("V6", "2026-11-27T18:30:00Z", &every(0, 300, 30, 50.0));
    let fleet = json!([
        vehicle("V4", "passenger", 30_000),
        vehicle("V5", "passenger", 30_000),
        vehicle("V6", "freight", 30_000)
    ]);
    let events = r.replay(fleet).await;
    let rule = "vehicle.night_driving";
    let (v4, v5, th) = (cause(rule, "V4"), cause(rule, "V5"), Some(5.0));
    let want = vec![
        v4("raised", "alarm", 50.0, th, &after(t0, 660)),
        v4("cleared", "alarm", 0.0, th, &after(t0, 1_500)),
        v5("raised", "alarm", 50.0, th, &after(t5, 60)),
        v5("cleared", "alarm", 50.0, th, &after(t5, 600)),
    ];
    assert_eq!(of_rule(&events, SITE, rule), want);
}
