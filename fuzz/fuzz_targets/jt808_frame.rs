//! The splitter, the frame decoder, the reassembler and every body decoder never panic,
//! whatever the bytes; the splitter never holds more than its bound; what decodes encodes
//! into a body that decodes, and from then on encoding and decoding is the identity (the
//! first encoding may normalise: text that is not GBK, a 2011 registration, padding).
#![no_main]
use jt808::*;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses how the stream is cut into reads.
    let (chunk, stream) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => return,
    };
    let mut split = FrameSplitter::new(512);
    let mut r = Reassembler::new(4, 4096, Duration::from_secs(10));
    let t0 = Instant::now();
    for (i, c) in stream.chunks(chunk).enumerate() {
        split.push(c);
        while let Some(raw) = split.next_frame() {
            assert!(split.pending_bytes() <= 512 + chunk);
            let Ok(raw) = raw else { continue };
            let Ok(f) = decode_frame(&raw) else { continue };
            let now = t0 + Duration::from_millis(i as u64 * 100);
            let Ok(Some((h, body))) = r.push(&f.header, f.body, now) else {
                continue;
            };
            if let Ok(m) = Message::decode(&h, &body) {
                let m2 = Message::decode(&h, &m.encode_body(h.layout))
                    .expect("an encoded message decodes");
                let m3 = Message::decode(&h, &m2.encode_body(h.layout))
                    .expect("an encoded message decodes");
                assert_eq!(m2, m3);
            }
        }
    }
});
