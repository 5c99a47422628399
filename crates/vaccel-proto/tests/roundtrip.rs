//! Every message round-trips; truncated, corrupted and random input is an
//! error, never a panic; big blobs are borrowed and 8-byte aligned.

use vaccel_proto::{
    ArgWire, DEFAULT_MAX_FRAME, FileWire, Frame, HEADER_LEN, Header, OutWire, RegionWire, Request,
    Response, kind,
};

fn requests<'a>(big: &'a [u8]) -> Vec<Request<'a>> {
    vec![
        Request::Hello {
            version: 1,
            features: 1,
            token: b"secret",
        },
        Request::Ping { payload: b"x" },
        Request::SessionCreate { hint: 0x4000 },
        Request::SessionRelease { session: 7 },
        Request::ResourceCreate {
            kind: 2,
            files: vec![
                FileWire::Data {
                    name: "model.onnx",
                    data: big,
                },
                FileWire::HostPath {
                    name: "labels.txt",
                    path: "/srv/models/labels.txt",
                },
            ],
        },
        Request::ResourceRegister {
            resource: 3,
            session: 7,
        },
        Request::ResourceUnregister {
            resource: 3,
            session: 7,
        },
        Request::ResourceRelease { resource: 3 },
        Request::ResourceSync { resource: 3 },
        Request::Op {
            session: 7,
            op: 17,
            read: vec![
                ArgWire {
                    ty: 7,
                    flags: 0,
                    data: &[1, 2, 3, 4, 5, 6, 7, 8],
                },
                ArgWire {
                    ty: 18,
                    flags: 0,
                    data: big,
                },
            ],
            write: vec![
                OutWire {
                    ty: 18,
                    flags: 1,
                    capacity: big.len() as u64,
                    growable: false,
                    data: big,
                },
                OutWire {
                    ty: 28,
                    flags: 0,
                    capacity: 0,
                    growable: true,
                    data: &[],
                },
            ],
        },
        Request::ProfileGet { session: 7 },
        Request::ShmMap {
            region: 4,
            size: 1 << 20,
        },
        Request::ShmUnmap { region: 4 },
    ]
}

fn responses<'a>(big: &'a [u8]) -> Vec<Response<'a>> {
    vec![
        Response::HelloOk {
            version: 1,
            features: 0,
            max_frame: DEFAULT_MAX_FRAME,
            server: "vaccel-agent 0.1.0",
        },
        Response::Pong { payload: big },
        Response::Session {
            session: 1,
            plugin: "onnx",
        },
        Response::Resource { resource: 9 },
        Response::Done,
        Response::OpResult {
            outputs: vec![big, b"tags"],
        },
        Response::Profile {
            regions: vec![RegionWire {
                op: 3,
                count: 2,
                total_ns: 10,
                min_ns: 4,
                max_ns: 6,
            }],
        },
        Response::ResourceData {
            files: vec![("a", b"xyz"), ("b", big)],
        },
        Response::Error {
            code: 22,
            message: "sgemm: lda (2) must be >= k (3)",
        },
    ]
}

/// Split an encoded frame into header and an 8-aligned payload buffer, as a
/// receiver does.
fn receive(bytes: &[u8]) -> (Header, Vec<u64>) {
    let h = Header::decode(bytes[..HEADER_LEN].try_into().unwrap(), DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(h.len as usize, bytes.len() - HEADER_LEN);
    let mut words = vec![0u64; (h.len as usize).div_ceil(8)];
    let dst: &mut [u8] = bytemuck_bytes(&mut words);
    dst[..h.len as usize].copy_from_slice(&bytes[HEADER_LEN..]);
    (h, words)
}

fn bytemuck_bytes(w: &mut [u64]) -> &mut [u8] {
    bytemuck::cast_slice_mut(w)
}

fn payload(words: &[u64], len: usize) -> &[u8] {
    &bytemuck::cast_slice(words)[..len]
}

#[test]
fn requests_round_trip() {
    let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    for (id, req) in requests(&big).into_iter().enumerate() {
        let frame = req.encode(id as u64 + 100).unwrap();
        let bytes = frame.to_vec();
        assert_eq!(bytes.len(), frame.len());
        let (h, words) = receive(&bytes);
        assert_eq!(h.id, id as u64 + 100);
        assert_eq!(h.kind, req.kind());
        let back = Request::decode(h.kind, payload(&words, h.len as usize)).unwrap();
        assert_eq!(back, req);
    }
}

#[test]
fn responses_round_trip() {
    let big = vec![0xabu8; 4096];
    for (id, resp) in responses(&big).into_iter().enumerate() {
        let bytes = resp.encode(id as u64).unwrap().to_vec();
        let (h, words) = receive(&bytes);
        assert_eq!(h.kind & kind::RESPONSE, kind::RESPONSE);
        assert_eq!(
            Response::decode(h.kind, payload(&words, h.len as usize)).unwrap(),
            resp
        );
    }
}

#[test]
fn big_blobs_are_borrowed_and_aligned() {
    let a: Vec<f32> = (0..4096).map(|i| i as f32).collect();
    let bytes: &[u8] = bytemuck::cast_slice(&a);
    let req = Request::Op {
        session: 1,
        op: 17,
        read: vec![
            ArgWire {
                ty: 5,
                flags: 0,
                data: &[1, 0, 0],
            },
            ArgWire {
                ty: 18,
                flags: 0,
                data: bytes,
            },
        ],
        write: vec![],
    };
    let frame: Frame<'_> = req.encode(1).unwrap();
    // The matrix is one of the scatter/gather slices, by address: not copied.
    assert!(
        frame
            .io_slices()
            .iter()
            .any(|s| s.as_ptr() == bytes.as_ptr() && s.len() == bytes.len())
    );
    let wire = frame.to_vec();
    let (h, words) = receive(&wire);
    let p = payload(&words, h.len as usize);
    let Request::Op { read, .. } = Request::decode(h.kind, p).unwrap() else {
        panic!("not an op")
    };
    // Decoded in place, at an 8-aligned address inside the receive buffer.
    assert_eq!(read[1].data.as_ptr() as usize % 8, 0);
    assert!(p.as_ptr_range().contains(&read[1].data.as_ptr()));
    assert_eq!(read[1].data, bytes);
}

#[test]
fn every_truncation_is_an_error() {
    let big = vec![7u8; 1500];
    for req in requests(&big) {
        let bytes = req.encode(1).unwrap().to_vec();
        let p = &bytes[HEADER_LEN..];
        for cut in 0..p.len() {
            assert!(
                Request::decode(req.kind(), &p[..cut]).is_err(),
                "{req:?} cut at {cut}"
            );
        }
    }
    for resp in responses(&big) {
        let bytes = resp.encode(1).unwrap().to_vec();
        let p = &bytes[HEADER_LEN..];
        for cut in 0..p.len() {
            if resp == Response::Done {
                continue;
            }
            assert!(
                Response::decode(resp.kind(), &p[..cut]).is_err(),
                "{resp:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn trailing_bytes_and_unknown_kinds_are_errors() {
    let mut p = Request::SessionCreate { hint: 1 }
        .encode(1)
        .unwrap()
        .to_vec()[HEADER_LEN..]
        .to_vec();
    p.push(0);
    let e = Request::decode(kind::SESSION_CREATE, &p).unwrap_err();
    assert!(e.to_string().contains("1 trailing bytes"), "{e}");
    assert!(Request::decode(0x7777, &[]).is_err());
    assert!(Response::decode(0x7777, &[]).is_err());
    // A request kind is not a response kind and vice versa.
    assert!(Response::decode(kind::OP, &[]).is_err());
    assert!(Request::decode(kind::OP_RESULT, &[]).is_err());
}

#[test]
fn hostile_counts_do_not_allocate() {
    // An op claiming 4 billion read arguments in a tiny payload.
    let mut p = Vec::new();
    p.extend_from_slice(&1u64.to_le_bytes());
    p.extend_from_slice(&17u32.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    let e = Request::decode(kind::OP, &p).unwrap_err();
    assert!(e.to_string().contains("cannot fit"), "{e}");
    // Writes: a huge count with no data fails on truncation, not on allocation.
    let mut p = Vec::new();
    p.extend_from_slice(&1u64.to_le_bytes());
    p.extend_from_slice(&17u32.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Request::decode(kind::OP, &p).is_err());
    // A blob claiming 2^63 bytes.
    let mut p = Vec::new();
    p.extend_from_slice(&(1u64 << 63).to_le_bytes());
    assert!(Request::decode(kind::PING, &p).is_err());
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 200) as usize;
        let bytes: Vec<u8> = (0..n).map(|i| (x >> (i % 56)) as u8).collect();
        vaccel_proto::fuzz_frame(&bytes);
    }
}

#[test]
fn shm_refs_round_trip() {
    let b = vaccel_proto::encode_shm_ref(3, 4096, 1 << 20);
    assert_eq!(
        vaccel_proto::decode_shm_ref(&b).unwrap(),
        (3, 4096, 1 << 20)
    );
    assert!(vaccel_proto::decode_shm_ref(&b[..23]).is_err());
}
