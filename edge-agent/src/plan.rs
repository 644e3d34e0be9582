//! Request planning: the points of one device read in as few Modbus requests as the protocol
//! allows. Points of one unit and function whose addresses touch or overlap are read in one request,
//! up to 2000 bits or 125 registers. Gaps are never bridged (a device may refuse to read an
//! address it does not have).

use crate::config::{Function, PointConfig};

/// One read request and the points it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    /// The point's own unit id where it has one (else the device's).
    pub unit: Option<u8>,
    pub function: Function,
    pub address: u16,
    pub count: u16,
    /// Indices into the device's `points`.
    pub points: Vec<usize>,
}

/// Plan the read requests for `points`, in (unit, function, address) order.
pub fn plan_requests(points: &[PointConfig]) -> Vec<ReadRequest> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| {
        let p = &points[i];
        (p.unit_id, p.function, p.address, p.width())
    });
    let mut out: Vec<ReadRequest> = Vec::new();
    for i in order {
        let p = &points[i];
        let start = u32::from(p.address);
        let end = start + u32::from(p.width());
        let limit = u32::from(p.function.max_per_request());
        if let Some(cur) = out.last_mut() {
            let cur_start = u32::from(cur.address);
            let cur_end = cur_start + u32::from(cur.count);
            if cur.function == p.function
                && cur.unit == p.unit_id
                && start <= cur_end
                && end.max(cur_end) - cur_start <= limit
            {
                cur.count = (end.max(cur_end) - cur_start) as u16;
                cur.points.push(i);
                continue;
            }
        }
        out.push(ReadRequest {
            unit: p.unit_id,
            function: p.function,
            address: p.address,
            count: p.width(),
            points: vec![i],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::DataType;

    fn pt(
        name: &str,
        function: Function,
        address: u16,
        ty: DataType,
        bit: Option<u8>,
    ) -> PointConfig {
        PointConfig {
            point: telemetry::PointId::new(name).unwrap(),
            function,
            address,
            unit_id: None,
            data_type: Some(ty),
            bit,
            order: Default::default(),
            scale: 1.0,
            offset: 0.0,
            quantity: telemetry::Quantity::Ch4,
            unit: telemetry::Unit::PercentVol,
            location: None,
            gas: None,
            range: None,
            tags: Default::default(),
            name: None,
            interval_ms: None,
            limits: None,
        }
    }

    #[test]
    fn contiguous_points_share_one_request_and_gaps_split() {
        use DataType::*;
        use Function::*;
        let points = vec![
            pt("f32-at-2", Holding, 2, F32, None), // 2..4
            pt("u16-at-0", Holding, 0, U16, None), // 0..1
            pt("u16-at-1", Holding, 1, U16, None), // 1..2
            pt("bit-3-of-4", Holding, 4, Bool, Some(3)),
            pt("bit-4-of-4", Holding, 4, Bool, Some(4)), // overlaps: same register
            pt("f64-at-10", Holding, 10, F64, None),     // gap 5..10: new request
            pt("in-at-0", Input, 0, U16, None),          // other function
            pt("coil-0", Coil, 0, Bool, None),
            pt("coil-1", Coil, 1, Bool, None),
            pt("coil-5", Coil, 5, Bool, None),
        ];
        let plan = plan_requests(&points);
        let got: Vec<(Function, u16, u16, Vec<usize>)> = plan
            .into_iter()
            .map(|r| (r.function, r.address, r.count, r.points))
            .collect();
        assert_eq!(
            got,
            vec![
                (Coil, 0, 2, vec![7, 8]),
                (Coil, 5, 1, vec![9]),
                (Holding, 0, 5, vec![1, 2, 0, 3, 4]),
                (Holding, 10, 4, vec![5]),
                (Input, 0, 1, vec![6]),
            ]
        );
    }

    #[test]
    fn units_are_never_mixed_in_one_request() {
        let mut points: Vec<PointConfig> = (0..4)
            .map(|a| pt(&format!("r{a}"), Function::Holding, a, DataType::U16, None))
            .collect();
        points[2].unit_id = Some(2);
        points[3].unit_id = Some(2);
        let got: Vec<(Option<u8>, u16, u16)> = plan_requests(&points)
            .iter()
            .map(|r| (r.unit, r.address, r.count))
            .collect();
        assert_eq!(got, vec![(None, 0, 2), (Some(2), 2, 2)]);
    }

    /// The (address, count) of each request planned for `points`.
    fn spans(points: &[PointConfig]) -> Vec<(u16, u16)> {
        plan_requests(points)
            .iter()
            .map(|r| (r.address, r.count))
            .collect()
    }

    #[test]
    fn requests_respect_protocol_limits() {
        // 130 contiguous u16 registers: 125 + 5.
        let regs: Vec<PointConfig> = (0..130)
            .map(|a| pt(&format!("r{a}"), Function::Input, a, DataType::U16, None))
            .collect();
        assert_eq!(spans(&regs), vec![(0, 125), (125, 5)]);
        // A 64-bit value never straddles two requests: 62 f64 = 248 registers, 31 per request.
        let wide: Vec<PointConfig> = (0..62)
            .map(|a| {
                pt(
                    &format!("w{a}"),
                    Function::Holding,
                    a * 4,
                    DataType::F64,
                    None,
                )
            })
            .collect();
        assert_eq!(spans(&wide), vec![(0, 124), (124, 124)]);
        // 2100 coils: 2000 + 100.
        let bits: Vec<PointConfig> = (0..2100)
            .map(|a| pt(&format!("c{a}"), Function::Coil, a, DataType::Bool, None))
            .collect();
        assert_eq!(spans(&bits), vec![(0, 2000), (2000, 100)]);
    }
}
