//! Parse CAP files and print what they become: `cargo run -p weather --example cap_dump -- FILE...`.
fn main() {
    let config = weather::WeatherConfig::default();
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("readable file");
        match weather::parse_cap(&bytes, &config.cap) {
            Ok(alert) => {
                println!(
                    "{path}: {} {} {} infos={}",
                    alert.identifier,
                    alert.msg_type,
                    alert.status,
                    alert.infos.len()
                );
                for w in weather::warnings_from_cap(&alert, &config) {
                    println!(
                        "  {} kind={} level={} regions={:?} polygons={} circles={:?} {} .. {} headline={:?}",
                        w.id, w.kind, w.level, w.regions, w.polygons.len(), w.circles, w.effective, w.expires, w.headline
                    );
                }
            }
            Err(e) => println!("{path}: REFUSED [{}] {e}", e.code()),
        }
    }
}
