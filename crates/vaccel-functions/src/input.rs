//! Reading an image out of a request: raw image bytes, or a JSON object
//! with the image as base64 (optionally a `data:` URL), checked by magic
//! bytes before any op runs.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Request};

use crate::reply::{Failure, check_size};

/// Image formats the ops decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 'PNG' 0D 0A 1A 0A`).
    Png,
    /// WebP (`'RIFF' size 'WEBP'`).
    Webp,
}

impl ImageFormat {
    /// The media type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
        }
    }
}

/// The format of an encoded image, by its magic bytes; `None` when it is
/// none of JPEG, PNG and WebP.
pub fn sniff(b: &[u8]) -> Option<ImageFormat> {
    if b.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(ImageFormat::Jpeg)
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

/// Formats we recognise but the ops do not decode, for a precise message.
fn unsupported_format(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("GIF")
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        Some("TIFF")
    } else if b.len() >= 12 && &b[4..8] == b"ftyp" {
        Some("HEIF/AVIF")
    } else if b.starts_with(b"%PDF") {
        Some("PDF")
    } else if b.starts_with(b"BM") && b.len() >= 14 {
        Some("BMP")
    } else {
        None
    }
}

/// What the functions accept, for messages.
pub(crate) const WANTED: &str =
    "a JPEG, PNG or WebP image (raw bytes) or JSON {\"image\": \"<base64>\"}";

/// JSON fields that may hold the image, in the order they are looked up
/// (`image` and the names face-blur study clients use).
pub const IMAGE_FIELDS: &[&str] = &[
    "image",
    "frame",
    "data",
    "img",
    "image_base64",
    "imageBase64",
    "b64",
    "base64",
];

/// An image taken out of a request.
#[derive(Debug)]
pub(crate) struct ImageInput {
    /// The encoded image.
    pub bytes: Bytes,
    /// The JSON object it came in, if it came in one (other fields may be
    /// parameters).
    pub json: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A parameter: from the query, or else from the JSON object the image
/// came in (a string field as is, a number as written).
pub(crate) fn param(query: &[(String, String)], img: &ImageInput, name: &str) -> Option<String> {
    if let Some((_, v)) = query.iter().find(|(k, _)| k == name) {
        return Some(v.clone());
    }
    match img.json.as_ref()?.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The media type of a request, lower-cased, without parameters.
fn media_type(h: &HeaderMap) -> Option<String> {
    let v = h.get(CONTENT_TYPE)?;
    let s = String::from_utf8_lossy(v.as_bytes());
    let essence = s
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

fn is_json(media: &str) -> bool {
    media == "application/json" || media == "text/json" || media.ends_with("+json")
}

/// Describe bytes that are not an image we decode.
fn not_an_image(b: &[u8], what: &str) -> Failure {
    match unsupported_format(b) {
        Some(f) => Failure::bad(format!(
            "{what} is a {f} image: send a JPEG, PNG or WebP image"
        )),
        None => Failure::bad(format!("{what} is not an image: expected {WANTED}")),
    }
}

/// The image in a request whose body is at most `max_body` bytes.
pub(crate) fn image(req: &Request<Bytes>, max_body: usize) -> Result<ImageInput, Failure> {
    let body = req.body();
    if body.is_empty() {
        return Err(Failure::bad(format!("empty request body: send {WANTED}")));
    }
    check_size(body.len(), max_body)?;
    if sniff(body).is_some() {
        return Ok(ImageInput {
            bytes: body.clone(),
            json: None,
        });
    }
    let media = media_type(req.headers());
    let looks_json = body
        .iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c == b'{' || *c == b'"');
    match media.as_deref() {
        Some(m) if is_json(m) => from_json(body),
        None | Some("application/octet-stream") if looks_json => from_json(body),
        // curl --data-binary sends this for anything.
        Some("application/x-www-form-urlencoded") if looks_json => from_json(body),
        None | Some("application/octet-stream") => Err(not_an_image(body, "the request body")),
        Some(m) if m.starts_with("image/") && unsupported_format(body).is_none() => Err(
            not_an_image(body, &format!("the request body (Content-Type {m})")),
        ),
        Some(m) => Err(match unsupported_format(body) {
            Some(_) => not_an_image(body, "the request body"),
            None => Failure::bad(format!(
                "unsupported Content-Type {m}: send {WANTED} (Content-Type image/jpeg, image/png, image/webp or application/json)"
            )),
        }),
    }
}

fn from_json(body: &[u8]) -> Result<ImageInput, Failure> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Failure::bad(format!("the request body is not valid JSON: {e}")))?;
    let (field, text, json) = match v {
        // A bare JSON string is the image itself.
        serde_json::Value::String(s) => ("the JSON string".to_string(), s, None),
        serde_json::Value::Object(map) => {
            let Some(name) = IMAGE_FIELDS.iter().find(|f| map.contains_key(**f)) else {
                let fields: Vec<String> = IMAGE_FIELDS.iter().map(|f| format!("\"{f}\"")).collect();
                return Err(Failure::bad(format!(
                    "the JSON body has no image field: put the base64 image in one of {}",
                    fields.join(", ")
                )));
            };
            let text = match &map[*name] {
                serde_json::Value::String(s) => s.clone(),
                other => {
                    return Err(Failure::bad(format!(
                        "JSON field \"{name}\" must be a base64 string, not {}",
                        kind(other)
                    )));
                }
            };
            (format!("JSON field \"{name}\""), text, Some(map))
        }
        other => {
            return Err(Failure::bad(format!(
                "the JSON body must be an object like {{\"image\": \"<base64>\"}}, not {}",
                kind(&other)
            )));
        }
    };
    let b64 = strip_data_url(&text).map_err(|e| Failure::bad(format!("{field}: {e}")))?;
    let bytes = decode_base64(b64.as_bytes())
        .map_err(|e| Failure::bad(format!("{field} is not valid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(Failure::bad(format!(
            "{field} is empty: it must hold a base64 image"
        )));
    }
    if sniff(&bytes).is_none() {
        return Err(not_an_image(&bytes, &format!("the base64 data of {field}")));
    }
    Ok(ImageInput {
        bytes: bytes.into(),
        json,
    })
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The base64 part of `data:image/jpeg;base64,…`, or the text itself.
fn strip_data_url(s: &str) -> Result<&str, String> {
    let t = s.trim_start();
    if !t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
        return Ok(s);
    }
    let Some((meta, data)) = t.split_once(',') else {
        return Err("a data: URL needs a ',' before the data".into());
    };
    if !meta
        .split(';')
        .skip(1)
        .any(|p| p.trim().eq_ignore_ascii_case("base64"))
    {
        return Err(format!(
            "the data: URL must be base64-encoded ({meta};base64,…)"
        ));
    }
    Ok(data)
}

/// Decode base64: the standard or the URL-safe alphabet, padding optional,
/// whitespace ignored.
pub fn decode_base64(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut digits = 0usize;
    let mut padding = 0usize;
    for (i, &c) in s.iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => {
                let shown = if c.is_ascii_graphic() {
                    format!("'{}'", c as char)
                } else {
                    format!("byte 0x{c:02x}")
                };
                return Err(format!("unexpected {shown} at offset {i}"));
            }
        };
        if padding > 0 {
            return Err(format!("data after '=' padding at offset {i}"));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        digits += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if digits % 4 == 1 {
        return Err(format!(
            "{digits} base64 digits cannot be whole bytes (truncated?)"
        ));
    }
    if padding > 2 || (padding > 0 && (digits + padding) % 4 != 0) {
        return Err("wrong '=' padding".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    fn enc(data: &[u8]) -> String {
        // A reference encoder for the tests (standard alphabet, padded).
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for ch in data.chunks(3) {
            let n = (u32::from(ch[0]) << 16)
                | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
                | u32::from(*ch.get(2).unwrap_or(&0));
            for i in 0..4 {
                if i <= ch.len() {
                    s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..70 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let e = enc(&data);
            assert_eq!(decode_base64(e.as_bytes()).unwrap(), data, "{e}");
            let unpadded = e.trim_end_matches('=');
            assert_eq!(decode_base64(unpadded.as_bytes()).unwrap(), data);
            let url = e.replace('+', "-").replace('/', "_");
            assert_eq!(decode_base64(url.as_bytes()).unwrap(), data);
            let wrapped: String = e
                .as_bytes()
                .chunks(10)
                .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
                .collect();
            assert_eq!(decode_base64(wrapped.as_bytes()).unwrap(), data);
        }
        assert_eq!(decode_base64(b"aGVsbG8=").unwrap(), b"hello");
    }

    #[test]
    fn bad_base64_is_named() {
        assert!(
            decode_base64(b"aGV*")
                .unwrap_err()
                .contains("'*' at offset 3")
        );
        assert!(decode_base64(b"a").unwrap_err().contains("truncated"));
        assert!(
            decode_base64(b"aGVsbG8=x")
                .unwrap_err()
                .contains("after '='")
        );
        assert!(
            decode_base64(b"aGVsbG8===")
                .unwrap_err()
                .contains("padding")
        );
        assert!(decode_base64(b"aGVsbG8==").unwrap_err().contains("padding"));
        assert!(
            decode_base64("é".as_bytes())
                .unwrap_err()
                .contains("byte 0xc3")
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&[0xff, 0xd8, 0xff, 0xe0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(unsupported_format(b"GIF89a..."), Some("GIF"));
        assert_eq!(ImageFormat::Png.mime(), "image/png");
    }

    const JPEG: &[u8] = &[0xff, 0xd8, 0xff, 0xe0, 1, 2, 3];

    fn req(ct: Option<&str>, body: impl Into<Bytes>) -> Request<Bytes> {
        let mut r = Request::new(body.into());
        if let Some(ct) = ct {
            r.headers_mut()
                .insert(CONTENT_TYPE, http::HeaderValue::from_str(ct).unwrap());
        }
        r
    }

    fn err(r: Request<Bytes>) -> String {
        let f = image(&r, 1000).unwrap_err();
        assert_eq!(f.status, StatusCode::BAD_REQUEST);
        f.message
    }

    #[test]
    fn raw_images_pass_whatever_the_content_type() {
        for ct in [
            None,
            Some("image/jpeg"),
            Some("application/x-www-form-urlencoded"),
            Some("application/json"),
        ] {
            let i = image(&req(ct, JPEG), 1000).unwrap();
            assert_eq!(&i.bytes[..], JPEG);
            assert!(i.json.is_none());
        }
    }

    #[test]
    fn json_bodies() {
        let b64 = enc(JPEG);
        for (ct, body) in [
            (
                Some("application/json"),
                format!("{{\"image\": \"{b64}\"}}"),
            ),
            (
                Some("application/json; charset=utf-8"),
                format!("{{\"frame\": \"{b64}\"}}"),
            ),
            (
                None,
                format!(" {{\"data\": \"data:image/jpeg;base64,{b64}\"}}"),
            ),
            (
                Some("application/x-www-form-urlencoded"),
                format!("{{\"img\": \"{b64}\"}}"),
            ),
            (Some("application/json"), format!("\"{b64}\"")),
        ] {
            let i = image(&req(ct, body.clone()), 1000).unwrap_or_else(|e| panic!("{body}: {e:?}"));
            assert_eq!(&i.bytes[..], JPEG);
        }
        let i = image(
            &req(
                Some("application/json"),
                format!("{{\"image\": \"{b64}\", \"quality\": 50}}"),
            ),
            1000,
        )
        .unwrap();
        assert_eq!(i.json.unwrap()["quality"], 50);
    }

    #[test]
    fn bad_bodies_are_400_with_a_reason() {
        assert!(err(req(None, "")).starts_with("empty request body"));
        assert_eq!(
            image(&req(None, vec![0xffu8; 1001]), 1000)
                .unwrap_err()
                .message,
            "request body of 1001 bytes is over the limit of 1000 bytes"
        );
        assert!(err(req(None, "hello")).contains("is not an image"));
        assert!(
            err(req(Some("image/png"), "hello"))
                .contains("(Content-Type image/png) is not an image")
        );
        assert!(
            err(req(Some("text/plain"), "hello"))
                .starts_with("unsupported Content-Type text/plain")
        );
        assert!(err(req(None, "GIF89a......")).contains("is a GIF image"));
        assert!(
            err(req(Some("application/json"), "{"))
                .starts_with("the request body is not valid JSON")
        );
        assert!(
            err(req(Some("application/json"), "hello"))
                .starts_with("the request body is not valid JSON")
        );
        assert!(err(req(Some("application/json"), "[1]")).contains("must be an object"));
        assert!(err(req(Some("application/json"), "{\"x\": 1}")).contains("no image field"));
        assert!(
            err(req(Some("application/json"), "{\"image\": 1}"))
                .contains("\"image\" must be a base64 string, not a number")
        );
        assert!(
            err(req(Some("application/json"), "{\"image\": \"@@@\"}"))
                .contains("\"image\" is not valid base64")
        );
        assert!(
            err(req(Some("application/json"), "{\"image\": \"\"}")).contains("\"image\" is empty")
        );
        assert!(
            err(req(Some("application/json"), "{\"image\": \"aGVsbG8=\"}"))
                .contains("is not an image")
        );
        assert!(
            err(req(
                Some("application/json"),
                "{\"image\": \"data:image/png,xyz\"}"
            ))
            .contains("must be base64-encoded")
        );
        assert!(
            err(req(
                Some("application/json"),
                "{\"image\": \"data:image/png;base64\"}"
            ))
            .contains("needs a ','")
        );
    }
}
