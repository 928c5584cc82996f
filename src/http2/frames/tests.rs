use super::*;

pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// Events as text, DATA pieces joined per frame, so that any split of
/// the input gives the same list.
fn events(chunks: &[&[u8]]) -> (Vec<String>, Result<(), FrameError>) {
    let mut reader = Reader::default();
    let mut out: Vec<String> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut result = Ok(());
    for chunk in chunks {
        result = reader.feed(chunk, &mut |event| match event {
            Event::Data { data: piece, .. } => data.extend(piece),
            Event::DataEnd { stream, end_stream } => {
                out.push(format!("data {stream} {:?} end={end_stream}", String::from_utf8_lossy(&data)));
                data.clear();
            }
            Event::Frame(frame) => out.push(format!("{frame:?}")),
        });
        if result.is_err() {
            break;
        }
    }
    (out, result)
}

fn sample() -> Vec<u8> {
    let mut bytes = frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0x10, 0, 0, 4, 0, 0, 0xff, 0xff]);
    bytes.extend(frame(SETTINGS, ACK, 0, &[]));
    // HEADERS, padded (2) with priority, no END_HEADERS, then CONTINUATION.
    bytes.extend(frame(HEADERS, PADDED | PRIORITY_FLAG, 1, &[2, 0, 0, 0, 0, 16, 0x82, 0x84, 0, 0]));
    bytes.extend(frame(CONTINUATION, END_HEADERS, 1, &[0x86]));
    bytes.extend(frame(DATA, PADDED, 1, b"\x03hello\0\0\0"));
    bytes.extend(frame(DATA, END_STREAM, 1, b""));
    bytes.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    bytes.extend(frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2, 0x82]));
    bytes.extend(frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
    bytes.extend(frame(PING, 0, 0, &[0; 8]));
    bytes.extend(frame(0xee, 0, 5, b"unknown type"));
    bytes.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 7, 0, 0, 0, 0, b'x']));
    bytes
}

#[test]
fn every_frame_type_reads_the_same_whatever_the_split() {
    let bytes = sample();
    let (whole, result) = events(&[&bytes]);
    result.unwrap();
    let want = [
        "Settings { ack: false, header_table_size: Some(4096) }",
        "Settings { ack: true, header_table_size: None }",
        "Headers { stream: 1, fragment: [130, 132], end_headers: false, end_stream: false, promised: None }",
        "Continuation { stream: 1, fragment: [134], end_headers: true }",
        "data 1 \"hello\" end=false",
        "data 1 \"\" end=true",
        "Other { kind: 8 }",
        "Headers { stream: 1, fragment: [130], end_headers: true, end_stream: false, promised: Some(2) }",
        "RstStream { stream: 3, code: 8 }",
        "Other { kind: 6 }",
        "Other { kind: 238 }",
        "GoAway { last_stream: 7, code: 0 }",
    ];
    assert_eq!(whole, want);
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(events(&bytewise).0, want);
    for cut in 0..bytes.len() {
        assert_eq!(events(&[&bytes[..cut], &bytes[cut..]]).0, want, "split at {cut}");
    }
}

#[test]
fn impossible_frames_are_errors() {
    let too_large = [0x10, 0x00, 0x01, HEADERS, 0, 0, 0, 0, 1];
    assert_eq!(events(&[&too_large]).1, Err(FrameError::TooLarge((1 << 20) + 1)));
    // DATA is streamed, not buffered: any length goes.
    let large_data = [0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1, b'x'];
    assert_eq!(events(&[&large_data]).1, Ok(()));
    assert_eq!(events(&[&frame(PING, 0, 0, &[0; 7])]).1, Err(FrameError::BadLength { kind: PING, len: 7 }));
    assert_eq!(events(&[&frame(DATA, PADDED, 1, &[9, 1, 2])]).1, Err(FrameError::BadPadding));
    assert_eq!(events(&[&frame(HEADERS, PADDED, 1, &[5, 0x82])]).1, Err(FrameError::BadPadding));
    assert_eq!(events(&[&frame(DATA, PADDED, 1, &[])]).1, Err(FrameError::BadPadding));
}

#[test]
fn a_boundary_is_found_after_a_partial_frame() {
    let bytes = sample();
    // Start inside the first SETTINGS frame's payload: the next frame head
    // is at 21.
    assert_eq!(find_boundary(&bytes[5..]), Some(21 - 5));
    assert_eq!(find_boundary(&bytes), Some(0));
    assert_eq!(find_boundary(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"), None);
    assert_eq!(find_boundary(&[0u8; 4]), None);
}
