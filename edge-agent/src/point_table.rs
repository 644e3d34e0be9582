//! Point tables (点表) from CSV: the spreadsheet integrators receive, one Modbus point a row,
//! with Chinese or English headers (the layout is in `README.md`). Every problem is named by
//! its row (as a spreadsheet numbers it: the header is row 1) and its column (letter and
//! header), and all of them are reported at once.

use crate::address::parse_address;
use crate::config::{resolve_address, Function, PointConfig};
use crate::decode::{ByteOrder, DataType};
use std::collections::BTreeMap;
use telemetry::{LimitKey, Limits, PointId, Quantity, Unit};

/// The columns a table may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Point,
    Name,
    Quantity,
    Unit,
    Location,
    Device,
    Address,
    Function,
    UnitId,
    DataType,
    Order,
    Bit,
    Scale,
    Offset,
    RangeLow,
    RangeHigh,
    Gas,
    IntervalMs,
    Limit(LimitKey),
    /// A remark column, read by people only.
    Ignored,
}

/// Header names (compared lower-case, without spaces, `_` or `-`) and their column.
const HEADERS: &[(&str, Column)] = &[
    ("point", Column::Point),
    ("pointid", Column::Point),
    ("tag", Column::Point),
    ("点位编号", Column::Point),
    ("点位", Column::Point),
    ("点号", Column::Point),
    ("位号", Column::Point),
    ("测点编号", Column::Point),
    ("name", Column::Name),
    ("description", Column::Name),
    ("名称", Column::Name),
    ("点位名称", Column::Name),
    ("测点名称", Column::Name),
    ("描述", Column::Name),
    ("quantity", Column::Quantity),
    ("监测类型", Column::Quantity),
    ("监测量", Column::Quantity),
    ("测量类型", Column::Quantity),
    ("unit", Column::Unit),
    ("单位", Column::Unit),
    ("location", Column::Location),
    ("位置", Column::Location),
    ("安装位置", Column::Location),
    ("device", Column::Device),
    ("设备", Column::Device),
    ("设备名称", Column::Device),
    ("address", Column::Address),
    ("地址", Column::Address),
    ("寄存器地址", Column::Address),
    ("function", Column::Function),
    ("功能码", Column::Function),
    ("寄存器类型", Column::Function),
    ("unitid", Column::UnitId),
    ("slave", Column::UnitId),
    ("从站地址", Column::UnitId),
    ("从站", Column::UnitId),
    ("站号", Column::UnitId),
    ("type", Column::DataType),
    ("datatype", Column::DataType),
    ("数据类型", Column::DataType),
    ("order", Column::Order),
    ("byteorder", Column::Order),
    ("字节序", Column::Order),
    ("bit", Column::Bit),
    ("位", Column::Bit),
    ("scale", Column::Scale),
    ("系数", Column::Scale),
    ("倍率", Column::Scale),
    ("offset", Column::Offset),
    ("偏移", Column::Offset),
    ("偏移量", Column::Offset),
    ("rangelow", Column::RangeLow),
    ("rangemin", Column::RangeLow),
    ("量程下限", Column::RangeLow),
    ("rangehigh", Column::RangeHigh),
    ("rangemax", Column::RangeHigh),
    ("量程上限", Column::RangeHigh),
    ("gas", Column::Gas),
    ("气体", Column::Gas),
    ("intervalms", Column::IntervalMs),
    ("采集周期ms", Column::IntervalMs),
    ("hh", Column::Limit(LimitKey::Hh)),
    ("高高限", Column::Limit(LimitKey::Hh)),
    ("高高报", Column::Limit(LimitKey::Hh)),
    ("h", Column::Limit(LimitKey::H)),
    ("高限", Column::Limit(LimitKey::H)),
    ("高报", Column::Limit(LimitKey::H)),
    ("l", Column::Limit(LimitKey::L)),
    ("低限", Column::Limit(LimitKey::L)),
    ("低报", Column::Limit(LimitKey::L)),
    ("ll", Column::Limit(LimitKey::Ll)),
    ("低低限", Column::Limit(LimitKey::Ll)),
    ("低低报", Column::Limit(LimitKey::Ll)),
    ("remark", Column::Ignored),
    ("note", Column::Ignored),
    ("comment", Column::Ignored),
    ("备注", Column::Ignored),
    ("说明", Column::Ignored),
];

/// Quantities as Chinese tables name them, and the contract's names.
const QUANTITIES: &[(&str, &str)] = &[
    ("甲烷", "ch4"),
    ("一氧化碳", "co"),
    ("氧气", "o2"),
    ("二氧化碳", "co2"),
    ("硫化氢", "h2s"),
    ("可燃气体", "lel"),
    ("有毒气体", "toxic"),
    ("温度", "temperature"),
    ("压力", "pressure"),
    ("液位", "level"),
    ("流量", "flow"),
    ("风速", "wind_speed"),
];

fn column_of(header: &str) -> Option<Column> {
    let key: String = header
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '_' | '-' | '(' | ')' | '（' | '）'))
        .flat_map(char::to_lowercase)
        .collect();
    if key.starts_with('#') {
        return Some(Column::Ignored);
    }
    HEADERS.iter().find(|(h, _)| *h == key).map(|(_, c)| *c)
}

/// The spreadsheet letter of a zero-based column index (0 = A, 26 = AA).
pub fn column_letter(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII")
}

/// One point of a table and the device its row names (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    /// The row as a spreadsheet numbers it (the header is row 1).
    pub row: usize,
    pub device: Option<String>,
    pub point: PointConfig,
}

/// The text of a CSV file: UTF-8 (a byte order mark is dropped) or, failing that, GB18030
/// (GBK), as spreadsheets saved on Chinese Windows write it.
pub fn table_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

/// Parse a point table. Either every row is a point, or the problems, each named by row and
/// column (`row 5, column F (地址): ...`).
pub fn parse_point_table(text: &str) -> Result<Vec<TableRow>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut errs = Vec::new();
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(vec![format!("row 1: not CSV: {e}")]),
    };
    let mut columns: Vec<Column> = Vec::with_capacity(headers.len());
    let mut seen: BTreeMap<Column, usize> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        let at = format!("row 1, column {} ({h})", column_letter(i));
        match column_of(h) {
            None if h.is_empty() => {
                errs.push(format!("{at}: the header is empty"));
                columns.push(Column::Ignored);
            }
            None => {
                errs.push(format!(
                    "{at}: unknown column (see the point table layout in the edge-agent README; a remark column is 备注 or remark)"
                ));
                columns.push(Column::Ignored);
            }
            Some(c) => {
                if c != Column::Ignored {
                    if let Some(first) = seen.insert(c, i) {
                        errs.push(format!(
                            "{at}: the same column as column {} ({})",
                            column_letter(first),
                            &headers[first]
                        ));
                    }
                }
                columns.push(c);
            }
        }
    }
    for (required, says) in [
        (Column::Point, "point / 点位编号"),
        (Column::Quantity, "quantity / 监测类型"),
        (Column::Unit, "unit / 单位"),
        (Column::Address, "address / 地址"),
    ] {
        if !seen.contains_key(&required) {
            errs.push(format!("row 1: no {says} column"));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map(|p| p.line() as usize).unwrap_or(0);
                errs.push(format!("row {row}: not CSV: {e}"));
                continue;
            }
        };
        let row = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() > columns.len() {
            errs.push(format!(
                "row {row}, column {}: {} cells but only {} headers",
                column_letter(columns.len()),
                record.len(),
                columns.len()
            ));
            continue;
        }
        let cells: BTreeMap<Column, (usize, &str)> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != Column::Ignored)
            .map(|(i, c)| (*c, (i, record.get(i).unwrap_or(""))))
            .collect();
        match parse_row(row, &headers, &cells) {
            Ok(r) => out.push(r),
            Err(mut e) => errs.append(&mut e),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

fn parse_row(
    row: usize,
    headers: &csv::StringRecord,
    cells: &BTreeMap<Column, (usize, &str)>,
) -> Result<TableRow, Vec<String>> {
    let mut errs = Vec::new();
    let at = |c: Column| -> String {
        let (i, _) = cells[&c];
        format!("row {row}, column {} ({})", column_letter(i), &headers[i])
    };
    let cell = |c: Column| -> Option<&str> {
        cells
            .get(&c)
            .map(|(_, v)| *v)
            .filter(|v: &&str| !v.is_empty())
    };
    // A parsed cell: None when empty, the problem recorded when it does not parse.
    macro_rules! parsed {
        ($col:expr, $parse:expr) => {
            match cell($col) {
                None => None,
                Some(v) => match $parse(v) {
                    Ok(x) => Some(x),
                    Err(why) => {
                        errs.push(format!("{}: {why}", at($col)));
                        None
                    }
                },
            }
        };
    }
    let number = |v: &str| -> Result<f64, String> {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{v:?} is not a number"))
    };
    let small = |v: &str| -> Result<u8, String> {
        v.parse::<u8>()
            .map_err(|_| format!("{v:?} is not a number 0..255"))
    };

    let point = match cell(Column::Point) {
        None => {
            errs.push(format!("{}: the point id is empty", at(Column::Point)));
            None
        }
        Some(v) => match PointId::new(v) {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(format!("{}: {e}", at(Column::Point)));
                None
            }
        },
    };
    let quantity = match cell(Column::Quantity) {
        None => {
            errs.push(format!("{}: the quantity is empty", at(Column::Quantity)));
            None
        }
        Some(v) => Some(quantity_of(v)),
    };
    let unit = match cell(Column::Unit) {
        None => {
            errs.push(format!("{}: the unit is empty", at(Column::Unit)));
            None
        }
        Some(v) => Some(Unit::parse(v)),
    };
    let address = match cell(Column::Address) {
        None => {
            errs.push(format!("{}: the address is empty", at(Column::Address)));
            None
        }
        Some(v) => match parse_address(v) {
            Ok(a) => Some(a),
            Err(e) => {
                errs.push(format!("{}: {e}", at(Column::Address)));
                None
            }
        },
    };
    let function = parsed!(Column::Function, function_of);
    let unit_id = parsed!(Column::UnitId, small);
    let data_type = parsed!(Column::DataType, data_type_of);
    let order = parsed!(Column::Order, order_of);
    let bit = parsed!(Column::Bit, |v: &str| small(v).and_then(|b| if b < 16 {
        Ok(b)
    } else {
        Err(format!("bit {b} must be 0..15"))
    }));
    let scale = parsed!(Column::Scale, |v: &str| number(v).and_then(|x| {
        if x == 0.0 {
            Err("scale must not be 0".to_string())
        } else {
            Ok(x)
        }
    }));
    let offset = parsed!(Column::Offset, number);
    let low = parsed!(Column::RangeLow, number);
    let high = parsed!(Column::RangeHigh, number);
    let interval_ms = parsed!(Column::IntervalMs, |v: &str| v
        .parse::<u64>()
        .ok()
        .filter(|x| *x > 0)
        .ok_or_else(|| format!("{v:?} is not a positive number of milliseconds")));
    let mut limits = BTreeMap::new();
    for key in [LimitKey::Hh, LimitKey::H, LimitKey::L, LimitKey::Ll] {
        if let Some(v) = parsed!(Column::Limit(key), number) {
            limits.insert(key, v);
        }
    }
    let limits = (!limits.is_empty()).then_some(Limits(limits));
    if let Some(l) = &limits {
        for e in crate::config::limits_problems(l) {
            let col = [LimitKey::Hh, LimitKey::H, LimitKey::L, LimitKey::Ll]
                .into_iter()
                .find(|k| cells.contains_key(&Column::Limit(*k)))
                .expect("a limit column");
            errs.push(format!("{}: {e}", at(Column::Limit(col))));
        }
    }
    let range = match (low, high) {
        (Some(lo), Some(hi)) if lo < hi => Some([lo, hi]),
        (Some(lo), Some(hi)) => {
            errs.push(format!(
                "{}: range {lo}..{hi} is empty",
                at(Column::RangeHigh)
            ));
            None
        }
        (Some(_), None) => {
            errs.push(format!(
                "row {row}: a range needs both its low and high (量程下限, 量程上限)"
            ));
            None
        }
        (None, Some(_)) => {
            errs.push(format!(
                "row {row}: a range needs both its low and high (量程下限, 量程上限)"
            ));
            None
        }
        (None, None) => None,
    };
    let resolved =
        address
            .as_ref()
            .and_then(|a| match resolve_address(function, a, unit_id, bit) {
                Ok(r) => Some(r),
                Err(why) => {
                    errs.push(format!("{}: {why}", at(Column::Address)));
                    None
                }
            });
    if !errs.is_empty() {
        return Err(errs);
    }
    let (function, unit_id, bit) = resolved.expect("no problems");
    let address = address.expect("no problems");
    let point = PointConfig {
        point: point.expect("no problems"),
        function,
        address: address.offset,
        unit_id,
        data_type,
        bit,
        order: order.unwrap_or_default(),
        scale: scale.unwrap_or(1.0),
        offset: offset.unwrap_or(0.0),
        quantity: quantity.expect("no problems"),
        unit: unit.expect("no problems"),
        location: cell(Column::Location).map(str::to_string),
        gas: cell(Column::Gas).map(str::to_string),
        range,
        tags: BTreeMap::new(),
        name: cell(Column::Name).map(str::to_string),
        interval_ms,
        limits,
    };
    Ok(TableRow {
        row,
        device: cell(Column::Device).map(str::to_string),
        point,
    })
}

fn quantity_of(v: &str) -> Quantity {
    let q = QUANTITIES
        .iter()
        .find(|(zh, _)| *zh == v)
        .map(|(_, q)| *q)
        .unwrap_or(v);
    Quantity::parse(&q.to_lowercase())
}

fn function_of(v: &str) -> Result<Function, String> {
    Ok(match v.to_lowercase().as_str() {
        "coil" | "coils" | "1" | "01" | "线圈" | "0x" => Function::Coil,
        "discrete_input" | "discrete" | "2" | "02" | "离散输入" | "1x" => Function::DiscreteInput,
        "holding" | "holding_register" | "3" | "03" | "保持寄存器" | "4x" => Function::Holding,
        "input" | "input_register" | "4" | "04" | "输入寄存器" | "3x" => Function::Input,
        _ => {
            return Err(format!(
                "{v:?} is not a table: coil (1, 线圈), discrete_input (2, 离散输入), holding (3, 保持寄存器), input (4, 输入寄存器)"
            ))
        }
    })
}

fn data_type_of(v: &str) -> Result<DataType, String> {
    Ok(match v.to_lowercase().as_str() {
        "bool" | "bit" | "布尔" => DataType::Bool,
        "u16" | "uint16" | "word" | "ushort" => DataType::U16,
        "i16" | "int16" | "int" | "short" => DataType::I16,
        "u32" | "uint32" | "dword" | "ulong" => DataType::U32,
        "i32" | "int32" | "dint" | "long" => DataType::I32,
        "u64" | "uint64" => DataType::U64,
        "i64" | "int64" => DataType::I64,
        "f32" | "float" | "float32" | "real" | "浮点" => DataType::F32,
        "f64" | "double" | "float64" | "lreal" => DataType::F64,
        _ => {
            return Err(format!(
                "{v:?} is not a data type: bool, u16, i16, u32, i32, u64, i64, f32 (float), f64 (double)"
            ))
        }
    })
}

fn order_of(v: &str) -> Result<ByteOrder, String> {
    Ok(match v.to_uppercase().as_str() {
        "ABCD" | "1234" | "AB" | "12" => ByteOrder::Abcd,
        "CDAB" | "3412" => ByteOrder::Cdab,
        "BADC" | "2143" | "BA" | "21" => ByteOrder::Badc,
        "DCBA" | "4321" => ByteOrder::Dcba,
        _ => {
            return Err(format!(
                "{v:?} is not a byte order: ABCD (1234), CDAB (3412), BADC (2143), DCBA (4321)"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZH: &str = "\u{feff}点位编号,名称,监测类型,单位,位置,设备,地址,数据类型,字节序,系数,偏移,高高限,高限,低限,低低限,备注\n\
        CH4-101,1号工作面甲烷,甲烷,%,working_face,gas-plc,40001,u16,,0.01,,1.5,1.0,,,主传感器\n\
        T-201,储罐温度,temperature,°C,tank_farm,gas-plc,3!300003,float,CDAB,,,,60,,,\n\
        FAN-1,局扇,operation_active,bool,,gas-plc,00005,,,,,,,,,\n";

    #[test]
    fn a_chinese_table_reads_with_its_limits() {
        let rows = parse_point_table(ZH).unwrap();
        assert_eq!(rows.len(), 3);
        let ch4 = &rows[0];
        assert_eq!((ch4.row, ch4.device.as_deref()), (2, Some("gas-plc")));
        let p = &ch4.point;
        assert_eq!(p.point.as_str(), "CH4-101");
        assert_eq!(
            (p.function, p.address, p.scale),
            (Function::Holding, 0, 0.01)
        );
        assert_eq!(p.quantity, Quantity::Ch4);
        assert_eq!(p.name.as_deref(), Some("1号工作面甲烷"));
        let l = p.limits.as_ref().unwrap();
        assert_eq!(
            (l.get(LimitKey::Hh), l.get(LimitKey::H)),
            (Some(1.5), Some(1.0))
        );
        assert_eq!(l.get(LimitKey::L), None);
        let t = &rows[1].point;
        assert_eq!(
            (t.function, t.address, t.unit_id, t.ty(), t.order),
            (Function::Input, 2, Some(3), DataType::F32, ByteOrder::Cdab)
        );
        let fan = &rows[2].point;
        assert_eq!(
            (fan.function, fan.address, fan.limits.clone()),
            (Function::Coil, 4, None)
        );
    }

    #[test]
    fn english_headers_and_a_function_column() {
        let t = "Point ID,Quantity,Unit,Address,Function,Type,Scale,HH\nLEL-1,lel,%LEL,12,input,i16,0.1,50\n";
        let rows = parse_point_table(t).unwrap();
        let p = &rows[0].point;
        assert_eq!(
            (p.function, p.address, p.ty()),
            (Function::Input, 12, DataType::I16)
        );
        assert_eq!(p.limits.as_ref().unwrap().get(LimitKey::Hh), Some(50.0));
        assert_eq!(rows[0].device, None);
    }

    #[test]
    fn every_wrong_cell_is_named_by_row_and_column() {
        let t = "点位编号,监测类型,单位,地址,数据类型,系数,高限,高高限\n\
            CH4-1,ch4,%,40001,u16,0.01,1.0,1.5\n\
            CH4-2,ch4,%,40000,u16,0.01,,\n\
            CH4-3,ch4,%,40003,float9,x,2.0,1.5\n\
            ,ch4,%,12,u16,,,\n";
        let errs = parse_point_table(t).unwrap_err();
        let has = |s: &str| errs.iter().any(|e| e.contains(s));
        assert!(has("row 3, column D (地址): address \"40000\""), "{errs:?}");
        assert!(has("row 4, column E (数据类型): \"float9\""), "{errs:?}");
        assert!(
            has("row 4, column F (系数): \"x\" is not a number"),
            "{errs:?}"
        );
        assert!(
            has("row 4, column") && has("limits out of order"),
            "{errs:?}"
        );
        assert!(
            has("row 5, column A (点位编号): the point id is empty"),
            "{errs:?}"
        );
        assert!(
            has("row 5, column D (地址): address 12 is a zero-based offset"),
            "{errs:?}"
        );
        assert!(!errs.iter().any(|e| e.contains("row 2")), "{errs:?}");
    }

    #[test]
    fn headers_are_checked() {
        let errs = parse_point_table("点位编号,单位,地址,颜色\nX,%,40001,red\n").unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("row 1, column D (颜色): unknown column")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("no quantity / 监测类型 column")),
            "{errs:?}"
        );
        let errs = parse_point_table("point,点位编号,quantity,unit,address\n").unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("column B (点位编号): the same column as column A")),
            "{errs:?}"
        );
    }

    #[test]
    fn gbk_files_are_read() {
        let (bytes, _, _) = encoding_rs::GBK.encode(ZH.trim_start_matches('\u{feff}'));
        let rows = parse_point_table(&table_text(&bytes)).unwrap();
        assert_eq!(rows[0].point.name.as_deref(), Some("1号工作面甲烷"));
    }

    #[test]
    fn letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
    }
}
