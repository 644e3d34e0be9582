//! A store of the first schema (migration 0001 alone, the oldest the gateway ever wrote) with
//! rows in each of its tables upgrades in place to the current schema when the gateway opens
//! it, and every row reads back through the store as the gateway uses it: the standing
//! incident to restore, its history, the catalogue (and its history, added by 0007), the seq
//! window, the dead letter (TEXT then, bytes now) and the publisher's cursor.

use super::Store;
use sqlx::any::AnyPoolOptions;

const INCIDENT: &str = r#"{"id":"inc-1","rule":"coal.ch4.working_face","rule_version":"v1","site":"mine-01","agent":"edge","point":"CH4-101","severity":"critical","state":"active","value":1.62,"threshold":1.5,"raised_at":"2026-03-01T08:00:00.000Z","acked_at":null,"acked_by":null,"cleared_at":null,"closed_at":null,"closed_by":null,"note":null,"late":false,"previous":null,"message":"甲烷超限","warnings":[]}"#;

async fn first_schema_upgrades(url: &str, admin: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("migrations");
    std::fs::create_dir(&first).unwrap();
    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut all: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    all.sort();
    assert_eq!(all[0], "0001_init.sql", "the oldest schema");
    std::fs::copy(src.join(&all[0]), first.join(&all[0])).unwrap();
    sqlx::any::install_default_drivers();
    let name = url.rsplit('/').next().unwrap().to_string();
    if let Some(admin) = admin {
        let pool = AnyPoolOptions::new().connect(admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(first.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let event = INCIDENT.replacen(
        '{',
        r#"{"event":"raised","event_id":"inc-1-1","event_seq":1,"at":"2026-03-01T08:00:00.000Z","#,
        1,
    );
    let catalogue = r#"{"agent":"edge","points":[{"point":"CH4-101","quantity":"ch4","unit":"%","location":"working_face"}]}"#;
    for (sql, binds) in [
        (
            "INSERT INTO incidents (id, cause, rule, site, state, severity, raised_ms, standing, body) \
             VALUES ('inc-1', 'cause-1', 'coal.ch4.working_face', 'mine-01', 'active', 'critical', 1772352000000, 1, $1)",
            vec![format!("[{INCIDENT},1]")],
        ),
        (
            "INSERT INTO incident_events (event_id, incident_id, site, event_seq, body) VALUES ('inc-1-1', 'inc-1', 'mine-01', 1, $1)",
            vec![event],
        ),
        (
            "INSERT INTO seq_windows (site, agent, epoch, body) VALUES ('mine-01', 'edge', 'e1', '{}')",
            vec![],
        ),
        (
            "INSERT INTO catalogues (site, agent, body) VALUES ('mine-01', 'edge', $1)",
            vec![catalogue.to_string()],
        ),
        (
            "INSERT INTO dead_letters (at_ms, topic, code, reason, raw) VALUES (1, 't', 'not_json', 'r', '[瓦斯')",
            vec![],
        ),
        ("INSERT INTO cursors (name, pos) VALUES ('mqtt_incidents', 1)", vec![]),
    ] {
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(b);
        }
        q.execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::open(url).await.unwrap();
    let standing = store.standing().await.unwrap();
    assert_eq!(standing.len(), 1);
    assert_eq!(standing[0].0, "cause-1");
    assert_eq!(standing[0].1.incident.message, "甲烷超限");
    let history = store.history("inc-1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].event_id, "inc-1-1");
    assert_eq!(store.catalogues().await.unwrap().len(), 1);
    assert_eq!(
        store.catalogues_between(0, 1).await.unwrap().len(),
        1,
        "0007 took the catalogue into its history"
    );
    assert_eq!(store.recent_seq_windows(0).await.unwrap().len(), 1);
    let dl = store.dead_letters(10).await.unwrap();
    assert_eq!(dl[0].raw, "[瓦斯");
    assert_eq!(
        super::event_log::EventLog::new(&store)
            .cursor("mqtt_incidents")
            .await
            .unwrap(),
        1
    );
    // The upgraded store takes new rows of every later table.
    assert_eq!(store.summary().await.unwrap().incidents, 1);
    store
        .add_weather_doc("cap", chrono::Utc::now(), b"<alert/>", 86_400_000)
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied as usize, all.len(), "every migration applied");
    store.pool().close().await;
    if let Some(admin) = admin {
        let pool = AnyPoolOptions::new().connect(admin).await.unwrap();
        let _ = sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&pool)
            .await;
    }
}

#[tokio::test]
async fn a_sqlite_store_of_the_first_schema_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("first.db").display()
    );
    first_schema_upgrades(&url, None).await;
}

#[tokio::test]
async fn a_postgres_store_of_the_first_schema_upgrades_in_place() {
    let name = format!("hrs_first_schema_{}", std::process::id());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    first_schema_upgrades(&url, Some("postgres://postgres@127.0.0.1:5432/postgres")).await;
}
