//! `gateway demo` (filled in once the agent library lands).

pub async fn run(_mqtt_port: Option<u16>) -> anyhow::Result<()> {
    anyhow::bail!("demo: not yet wired")
}
