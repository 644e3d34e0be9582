//! What kind of hazard a warning is about: the CMA signal codes (`11Bxx`, compiled in
//! `shared/reference/weather/cma_warning_signals.csv`) and the words of `<event>`.

/// The kinds this crate names itself. A warning whose kind is none of these carries a kind
/// made from its event text (see [`slug`]); metrics should label by [`kind_label`].
pub const KNOWN_KINDS: [&str; 20] = [
    "typhoon",
    "rainstorm",
    "snowstorm",
    "cold_wave",
    "gale",
    "sandstorm",
    "high_temperature",
    "drought",
    "lightning",
    "hail",
    "frost",
    "heavy_fog",
    "haze",
    "road_icing",
    "thunderstorm_gale",
    "forest_fire_danger",
    "earthquake",
    "tsunami",
    "flood",
    "heavy_pollution",
];

/// CMA warning signal codes (GB/T 35561 style) and their kinds.
pub const CMA_CODES: [(&str, &str, &str); 15] = [
    ("11B01", "typhoon", "台风"),
    ("11B03", "rainstorm", "暴雨"),
    ("11B04", "snowstorm", "暴雪"),
    ("11B05", "cold_wave", "寒潮"),
    ("11B06", "gale", "大风"),
    ("11B07", "sandstorm", "沙尘暴"),
    ("11B09", "high_temperature", "高温"),
    ("11B14", "lightning", "雷电"),
    ("11B15", "hail", "冰雹"),
    ("11B16", "frost", "霜冻"),
    ("11B17", "heavy_fog", "大雾"),
    ("11B19", "haze", "霾"),
    ("11B20", "thunderstorm_gale", "雷雨大风"),
    ("11B21", "road_icing", "道路结冰"),
    ("11B22", "drought", "干旱"),
];

/// Words of `<event>` by kind, most specific first. Chinese words match anywhere; English
/// phrases match whole words, case-insensitively.
const KIND_WORDS: &[(&str, &[&str], &[&str])] = &[
    (
        "thunderstorm_gale",
        &["雷雨大风"],
        &["thunderstorm gale", "thunderstorm wind"],
    ),
    (
        "forest_fire_danger",
        &["森林火险", "森林火灾"],
        &["forest fire", "bushfire", "wildfire"],
    ),
    (
        "road_icing",
        &["道路结冰"],
        &["road icing", "icy roads", "icy road"],
    ),
    (
        "typhoon",
        &["台风"],
        &["typhoon", "hurricane", "tropical storm", "tropical cyclone"],
    ),
    ("rainstorm", &["暴雨"], &["rainstorm", "heavy rain"]),
    (
        "snowstorm",
        &["暴雪"],
        &["snowstorm", "blizzard", "heavy snow", "winter storm"],
    ),
    ("cold_wave", &["寒潮"], &["cold wave"]),
    (
        "sandstorm",
        &["沙尘暴", "沙尘"],
        &["sandstorm", "dust storm", "sand storm"],
    ),
    (
        "gale",
        &["大风"],
        &["gale", "high wind", "strong wind", "wind warning"],
    ),
    ("high_temperature", &["高温"], &["high temperature", "heat"]),
    ("drought", &["干旱"], &["drought"]),
    (
        "lightning",
        &["雷电", "雷暴"],
        &["lightning", "thunderstorm", "thunderstorms"],
    ),
    ("hail", &["冰雹"], &["hail"]),
    ("frost", &["霜冻"], &["frost", "freeze"]),
    ("heavy_fog", &["大雾"], &["fog", "dense fog"]),
    // Heavy-pollution weather (重污染天气) warnings are the city government's (its ecology and
    // environment bureau's), not the CMA's: they come without a CMA code, named by their words.
    (
        "heavy_pollution",
        &["重污染天气", "空气重污染", "重污染"],
        &["heavy pollution", "heavy air pollution", "air pollution"],
    ),
    ("haze", &["霾"], &["haze", "smog"]),
    ("earthquake", &["地震"], &["earthquake"]),
    ("tsunami", &["海啸"], &["tsunami"]),
    (
        "flood",
        &["洪水", "山洪", "洪涝"],
        &["flood", "flash flood", "flooding"],
    ),
];

/// The CMA code (`11B` and two digits) in an event code value, if there is one.
pub fn cma_code_in(value: &str) -> Option<&str> {
    let b = value.as_bytes();
    (0..b.len().saturating_sub(4)).find_map(|i| {
        let w = &b[i..i + 5];
        (w[0] == b'1'
            && w[1] == b'1'
            && w[2] == b'B'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit())
        .then(|| &value[i..i + 5])
    })
}

/// The kind of a CMA code, if the code is known.
pub fn kind_of_cma_code(code: &str) -> Option<&'static str> {
    CMA_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, k, _)| *k)
}

/// The kind named by the words of a text, if any.
pub fn kind_of_words(text: &str) -> Option<&'static str> {
    let words = normalized_words(text);
    KIND_WORDS.iter().find_map(|(kind, zh, en)| {
        (zh.iter().any(|w| text.contains(w))
            || en.iter().any(|w| words.contains(&format!(" {w} "))))
        .then_some(*kind)
    })
}

/// The text as lowercase words separated by single spaces, with a space at each end.
pub(crate) fn normalized_words(text: &str) -> String {
    let mut out = String::from(" ");
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(&w.to_lowercase());
        out.push(' ');
    }
    out
}

/// A kind made from free event text: lowercase, runs of other characters as `_`, at most
/// 64 bytes; `unknown` when nothing is left.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                if out.len() + l.len_utf8() > 64 {
                    return finish(out);
                }
                out.push(l);
            }
        } else if !out.is_empty() && !out.ends_with('_') {
            if out.len() + 1 > 64 {
                return finish(out);
            }
            out.push('_');
        }
    }
    finish(out)
}

fn finish(mut s: String) -> String {
    while s.ends_with('_') {
        s.pop();
    }
    if s.is_empty() {
        "unknown".into()
    } else {
        s
    }
}

/// The kind as a metrics label: the kind itself where known, else `other`.
pub fn kind_label(kind: &str) -> &str {
    if KNOWN_KINDS.contains(&kind) {
        kind
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_words() {
        assert_eq!(cma_code_in("11B03"), Some("11B03"));
        assert_eq!(cma_code_in("CMA-11B14-RED"), Some("11B14"));
        assert_eq!(cma_code_in("11B0"), None);
        assert_eq!(cma_code_in("暴雨11B0"), None);
        assert_eq!(kind_of_cma_code("11B09"), Some("high_temperature"));
        assert_eq!(kind_of_words("暴雨橙色预警信号"), Some("rainstorm"));
        assert_eq!(kind_of_words("雷雨大风黄色预警"), Some("thunderstorm_gale"));
        assert_eq!(kind_of_words("雷电黄色预警"), Some("lightning"));
        assert_eq!(kind_of_words("SEVERE THUNDERSTORM"), Some("lightning"));
        assert_eq!(
            kind_of_words("Excessive Heat Warning"),
            Some("high_temperature")
        );
        assert_eq!(kind_of_words("Heathrow"), None);
        assert_eq!(kind_of_words("Child Abduction"), None);
        assert_eq!(kind_of_words("重污染天气红色预警"), Some("heavy_pollution"));
        assert_eq!(
            kind_of_words("Heavy Air Pollution Alert"),
            Some("heavy_pollution")
        );
        for (code, kind, zh) in CMA_CODES {
            assert!(KNOWN_KINDS.contains(&kind), "{code}");
            assert_eq!(kind_of_words(zh), Some(kind), "{zh}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Child Abduction"), "child_abduction");
        assert_eq!(slug("  Flash-Flood  Watch! "), "flash_flood_watch");
        assert_eq!(slug("地质灾害"), "地质灾害");
        assert_eq!(slug("***"), "unknown");
        assert!(slug(&"abc ".repeat(40)).len() <= 64);
        assert!(slug(&"灾".repeat(40)).len() <= 64);
        assert_eq!(kind_label("rainstorm"), "rainstorm");
        assert_eq!(kind_label("child_abduction"), "other");
    }
}
