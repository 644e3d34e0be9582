//! The words people read for what machines keep as codes: severities, incident states,
//! quantities, places, the standard pack's level labels, warning kinds and colours. One table
//! each, in Chinese as duty officers say it and in English; a code not in a table is shown as
//! it is (underscores as spaces).

use crate::Language;
use telemetry::{IncidentState, Quantity, Severity, WarningLevel};

/// Severity words: 提示 (info), 预警 (warning), 报警 (alarm), 紧急 (critical).
pub fn severity_word(s: Severity, lang: Language) -> &'static str {
    match (lang, s) {
        (Language::ZhCn, Severity::Info) => "提示",
        (Language::ZhCn, Severity::Warning) => "预警",
        (Language::ZhCn, Severity::Alarm) => "报警",
        (Language::ZhCn, Severity::Critical) => "紧急",
        (Language::En, s) => s.as_str(),
    }
}

/// Incident states: 未确认 (active), 已确认 (acknowledged), 已恢复 (cleared), 已关闭 (closed).
pub fn state_word(s: IncidentState, lang: Language) -> &'static str {
    match (lang, s) {
        (Language::ZhCn, IncidentState::Active) => "未确认",
        (Language::ZhCn, IncidentState::Acknowledged) => "已确认",
        (Language::ZhCn, IncidentState::Cleared) => "已恢复",
        (Language::ZhCn, IncidentState::Closed) => "已关闭",
        (Language::En, s) => s.as_str(),
    }
}

/// A warning's colour: 蓝色, 黄色, 橙色, 红色.
pub fn warning_level_word(l: WarningLevel, lang: Language) -> &'static str {
    match (lang, l) {
        (Language::ZhCn, WarningLevel::Blue) => "蓝色",
        (Language::ZhCn, WarningLevel::Yellow) => "黄色",
        (Language::ZhCn, WarningLevel::Orange) => "橙色",
        (Language::ZhCn, WarningLevel::Red) => "红色",
        (Language::En, WarningLevel::Blue) => "blue",
        (Language::En, WarningLevel::Yellow) => "yellow",
        (Language::En, WarningLevel::Orange) => "orange",
        (Language::En, WarningLevel::Red) => "red",
    }
}

/// The severity and state words of every language, `{"zh-CN": {"severity": {...}, "state":
/// {...}}, "en": {...}}`: the console reads them, so they stand in this one table.
pub fn words_json() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for lang in [Language::ZhCn, Language::En] {
        let severity: serde_json::Map<String, serde_json::Value> = [
            Severity::Info,
            Severity::Warning,
            Severity::Alarm,
            Severity::Critical,
        ]
        .into_iter()
        .map(|s| (s.as_str().to_string(), severity_word(s, lang).into()))
        .collect();
        let state: serde_json::Map<String, serde_json::Value> = [
            IncidentState::Active,
            IncidentState::Acknowledged,
            IncidentState::Cleared,
            IncidentState::Closed,
        ]
        .into_iter()
        .map(|s| (s.as_str().to_string(), state_word(s, lang).into()))
        .collect();
        out.insert(
            lang.as_str().to_string(),
            serde_json::json!({"severity": severity, "state": state}),
        );
    }
    serde_json::Value::Object(out)
}

fn spaced(code: &str) -> String {
    code.replace('_', " ")
}

/// A quantity in Chinese (`None` for one this table does not know).
pub(crate) fn quantity_zh(q: &Quantity) -> Option<&'static str> {
    Some(match q {
        Quantity::Ch4 => "甲烷",
        Quantity::Co => "一氧化碳",
        Quantity::O2 => "氧气",
        Quantity::Co2 => "二氧化碳",
        Quantity::H2s => "硫化氢",
        Quantity::Lel => "可燃气体",
        Quantity::Toxic => "有毒气体",
        Quantity::Temperature => "温度",
        Quantity::Pressure => "压力",
        Quantity::Level => "液位",
        Quantity::Flow => "流量",
        Quantity::WindSpeed => "风速",
        Quantity::WaterLevel => "水位",
        Quantity::Rainfall => "降雨量",
        Quantity::Displacement => "位移",
        Quantity::InterlockBypass => "联锁旁路",
        Quantity::InterlockTrip => "联锁动作",
        Quantity::PowerCut => "断电",
        Quantity::OperationActive => "作业",
        Quantity::Position => "位置",
        Quantity::VehicleAlarm => "车辆报警",
        Quantity::VehicleStatus => "车辆状态",
        Quantity::VehicleActiveSafety => "主动安全",
        Quantity::FanRunning => "风机",
        Quantity::PowerOffCommand => "断电指令",
        _ => return None,
    })
}

/// A place (a catalogue point's `location`).
pub fn place_word(location: &str, lang: Language) -> String {
    if lang == Language::En {
        return spaced(location);
    }
    let zh = match location {
        "working_face" => "工作面",
        "working_face_return" => "工作面回风巷",
        "upper_corner" => "上隅角",
        "return_airway" => "回风巷",
        "main_return" => "总回风巷",
        "intake_airway" => "进风巷",
        "heading_face" => "掘进工作面",
        "heading_return" => "掘进工作面回风流",
        "drainage_roadway" => "抽采巷",
        "coal_bunker" => "煤仓",
        "shearer" => "采煤机",
        "substation" => "变电所",
        "district_return" => "采区回风巷",
        "district_airway" => "采区进回风巷",
        "rock_heading" => "岩巷掘进工作面",
        "main_airway" => "主要进回风巷",
        "trolley_roadway" => "架线电机车巷道",
        "shaft_personnel" => "升降人员和物料的井筒",
        "shaft_material" => "专为升降物料的井筒",
        "ventilation_shaft" => "无提升设备的风井和风硐",
        "air_bridge" => "风桥",
        "walkway" => "其他通风人行巷道",
        "main_fan" => "主要通风机",
        "local_fan" => "局部通风机",
        "tank_farm" => "罐区",
        "reactor" => "反应釜",
        "machine_room" => "机电硐室",
        _ => return spaced(location),
    };
    zh.to_string()
}

/// A level label of a rule file in the reader's language (the standard pack's labels are
/// English in the files; this table gives them in Chinese).
pub fn label_word(label: &str, lang: Language) -> String {
    if lang == Language::En {
        return label.to_string();
    }
    let zh = match label {
        "restore level" => "复电浓度",
        "alarm level" => "报警浓度",
        "power-off level" => "断电浓度",
        "first alarm level" => "一级报警值",
        "second alarm level" => "二级报警值",
        "100 % OEL" => "100% 职业接触限值",
        "200 % OEL" => "200% 职业接触限值",
        "permitted limit" => "允许限值",
        "minimum oxygen" => "最低氧含量",
        "oxygen deficiency level" => "缺氧报警值",
        "oxygen enrichment level" => "富氧报警值",
        "warning water level" => "警戒水位",
        "alarm water level" => "报警水位",
        "limit water level" => "极限水位",
        "warning displacement" => "预警位移",
        "alarm displacement" => "报警位移",
        "limit displacement" => "极限位移",
        "warning temperature" => "预警温度",
        "design reference temperature" => "设计基准温度",
        "warning pressure" => "预警压力",
        "alarm pressure" => "报警压力",
        "short-duration heavy rain" => "短时强降雨",
        "a day's rainstorm within an hour" => "一小时内降下一天的暴雨量",
        "tripped" => "已联锁动作",
        "expressway limit" => "高速公路限速",
        "ordinary-road limit" => "其他道路限速",
        "continuous driving without rest" => "连续驾驶未休息",
        "continuous driving" => "连续驾驶",
        "driving time within 24 h" => "24 小时内累计驾驶时间",
        "driving within the window" => "窗口内累计驾驶时间",
        "driving between 02:00 and 05:00" => "凌晨 2 时至 5 时行驶",
        "emergency alarm pressed" => "紧急报警已触发",
        "terminal alarm" => "终端报警",
        "inside geofence" => "位于电子围栏内",
        "inside forbidden zone" => "驶入禁行区域",
        "bypassed" => "处于旁路",
        "post-earthquake inspection of the site required" => "需进行震后现场检查",
        "loading under a lightning warning" => "雷电预警期间装卸作业",
        "permitted intake CO2" => "进风流二氧化碳允许浓度",
        "stop work and withdraw CO2" => "停工撤人二氧化碳浓度",
        "investigate CO2" => "查明原因二氧化碳浓度",
        "maximum wind speed" => "最高允许风速",
        "minimum wind speed" => "最低允许风速",
        "shorten working hours temperature" => "缩短工作时间温度",
        "stop work temperature" => "停止作业温度",
        "stopped" => "停止运转",
        "high alarm setting" => "高报设定值",
        "high-high alarm setting" => "高高报设定值",
        "low alarm setting" => "低报设定值",
        "low-low alarm setting" => "低低报设定值",
        "bypassed (key regulated process)" => "处于旁路（重点监管危险化工工艺联锁）",
        "rainstorm over the mine: stop production and withdraw unless the threat is ruled out" => {
            "暴雨威胁矿井安全时须立即停产撤出井下全部人员，请核查"
        }
        "heavy-pollution warning: production-restriction check of the emission-reduction list" => {
            "重污染天气预警：核查应急减排清单企业限产停产措施落实"
        }
        _ => return label.to_string(),
    };
    zh.to_string()
}

/// A warning's kind (`rainstorm`, `earthquake`, ...).
pub fn warning_kind_word(kind: &str, lang: Language) -> String {
    if lang == Language::En {
        return spaced(kind);
    }
    if let Some((_, _, zh)) = weather::signals::CMA_CODES
        .iter()
        .find(|(_, k, _)| *k == kind)
    {
        return zh.to_string();
    }
    match kind {
        "earthquake" => "地震",
        "tsunami" => "海啸",
        "flood" => "洪水",
        "forest_fire_danger" => "森林火险",
        "heavy_rain" => "强降雨",
        "heavy_pollution" => "重污染天气",
        _ => return spaced(kind),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_as_duty_officers_use_them() {
        let zh: Vec<&str> = [
            Severity::Info,
            Severity::Warning,
            Severity::Alarm,
            Severity::Critical,
        ]
        .into_iter()
        .map(|s| severity_word(s, Language::ZhCn))
        .collect();
        assert_eq!(zh, ["提示", "预警", "报警", "紧急"]);
        assert_eq!(severity_word(Severity::Critical, Language::En), "critical");
        let w = words_json();
        assert_eq!(w["zh-CN"]["severity"]["critical"], "紧急");
        assert_eq!(w["zh-CN"]["state"]["cleared"], "已恢复");
        assert_eq!(w["en"]["severity"]["alarm"], "alarm");
    }

    #[test]
    fn every_label_of_the_standard_pack_has_its_chinese() {
        for file in alarm_rules::BUILTIN_FILES {
            // Every `label = "..."` and `clear_label = "..."`, on a line of its own or inline
            // in a level's table.
            for (at, key) in file.1.match_indices("label = \"") {
                let label = file.1[at + key.len()..].split('"').next().unwrap();
                assert_ne!(
                    label_word(label, Language::ZhCn),
                    label,
                    "{label:?} in {} has no Chinese",
                    file.0
                );
            }
        }
    }

    #[test]
    fn warning_kinds_and_places() {
        assert_eq!(warning_kind_word("rainstorm", Language::ZhCn), "暴雨");
        assert_eq!(warning_kind_word("earthquake", Language::ZhCn), "地震");
        assert_eq!(warning_kind_word("odd_thing", Language::ZhCn), "odd thing");
        assert_eq!(place_word("working_face", Language::ZhCn), "工作面");
        assert_eq!(place_word("working_face", Language::En), "working face");
    }
}
