//! The rule set in force: the built-in pack plus the files of `rules_dir`.

use crate::config::GatewayConfig;
use anyhow::Context;

/// Load the rule set: the built-in pack plus the files of `rules_dir`.
pub fn load_rules(config: &GatewayConfig) -> anyhow::Result<alarm_rules::RuleSet> {
    let mut files = Vec::new();
    if let Some(dir) = &config.rules_dir {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading rules dir {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            files.push((p.display().to_string(), text));
        }
    }
    alarm_rules::RuleSet::parse(&files, true).map_err(|e| anyhow::anyhow!("{e}"))
}
