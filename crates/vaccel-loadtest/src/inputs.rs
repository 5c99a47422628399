//! Request bodies: none, one file, a directory of images (sent round-robin)
//! or the frames of a video; optionally wrapped as a JSON frame.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;

use crate::error::{Error, Result};

/// Where request bodies come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Input {
    /// No body (a GET unless `--method` says otherwise).
    #[default]
    None,
    /// Every request sends this file.
    Body(PathBuf),
    /// The images of this directory (`.jpg`, `.jpeg`, `.png`, `.webp`, `.bmp`, `.gif`), sorted by name, round-robin.
    Images(PathBuf),
    /// The frames of an `.mp4`, JPEG-encoded, round-robin.
    Video {
        /// The video file.
        path: PathBuf,
        /// Use at most this many frames.
        max_frames: Option<usize>,
    },
}

impl Input {
    /// A short description for study.json and the console.
    pub fn describe(&self) -> String {
        match self {
            Input::None => "none".into(),
            Input::Body(p) => format!("body {}", p.display()),
            Input::Images(p) => format!("images {}", p.display()),
            Input::Video { path, max_frames } => match max_frames {
                Some(n) => format!("video {} (at most {n} frames)", path.display()),
                None => format!("video {}", path.display()),
            },
        }
    }
}

/// One request body with its content type.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The bytes sent.
    pub bytes: Bytes,
    /// Its `Content-Type`, when known.
    pub content_type: Option<&'static str>,
}

const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "jpe"];

fn content_type_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "gif" => "image/gif",
        "json" => "application/json",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    })
}

fn read(path: &Path) -> Result<Bytes> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })
}

/// Load the payloads of an input; with `json_frame`, each becomes
/// `{"FIELD": "<base64>"}` sent as `application/json`.
pub fn load(input: &Input, json_frame: Option<&str>) -> Result<Vec<Payload>> {
    let mut v = match input {
        Input::None => {
            if json_frame.is_some() {
                return Err(Error::Usage(
                    "--json-frame needs an input (--body, --images or --video)".into(),
                ));
            }
            vec![Payload {
                bytes: Bytes::new(),
                content_type: None,
            }]
        }
        Input::Body(p) => {
            if p.is_dir() {
                return Err(Error::BadInput {
                    path: p.clone(),
                    reason: "is a directory (use --images DIR for a directory of images)".into(),
                });
            }
            vec![Payload {
                bytes: read(p)?,
                content_type: content_type_of(p),
            }]
        }
        Input::Images(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|source| Error::Input {
                path: dir.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = Vec::new();
            for e in entries {
                let e = e.map_err(|source| Error::Input {
                    path: dir.clone(),
                    source,
                })?;
                let p = e.path();
                let is_image = p
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()));
                if is_image && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(Error::BadInput {
                    path: dir.clone(),
                    reason: format!(
                        "no images ({}) in this directory",
                        IMAGE_EXTENSIONS.join(", ")
                    ),
                });
            }
            files
                .iter()
                .map(|p| {
                    Ok(Payload {
                        bytes: read(p)?,
                        content_type: content_type_of(p),
                    })
                })
                .collect::<Result<_>>()?
        }
        Input::Video { path, max_frames } => {
            if let Err(source) = std::fs::metadata(path) {
                return Err(Error::Input {
                    path: path.clone(),
                    source,
                });
            }
            let frames = crate::video::frames(path, *max_frames).map_err(|e| Error::BadInput {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if frames.is_empty() {
                return Err(Error::BadInput {
                    path: path.clone(),
                    reason: "no frames decoded".into(),
                });
            }
            frames
                .into_iter()
                .map(|bytes| Payload {
                    bytes,
                    content_type: Some("image/jpeg"),
                })
                .collect()
        }
    };
    if let Some(field) = json_frame {
        let key = serde_json::to_string(field).expect("a string serialises");
        for p in &mut v {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&p.bytes);
            let mut s = String::with_capacity(b64.len() + key.len() + 6);
            s.push('{');
            s.push_str(&key);
            s.push_str(":\"");
            s.push_str(&b64);
            s.push_str("\"}");
            p.bytes = Bytes::from(s);
            p.content_type = Some("application/json");
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_frames() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.jpg");
        std::fs::write(&f, b"\xff\xd8hello").unwrap();
        let v = load(&Input::Body(f.clone()), Some("image")).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].content_type, Some("application/json"));
        let j: serde_json::Value = serde_json::from_slice(&v[0].bytes).unwrap();
        let b = base64::engine::general_purpose::STANDARD
            .decode(j["image"].as_str().unwrap())
            .unwrap();
        assert_eq!(b, b"\xff\xd8hello");
        let v = load(&Input::Body(f), None).unwrap();
        assert_eq!(v[0].content_type, Some("image/jpeg"));
    }

    #[test]
    fn image_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.png"), b"2").unwrap();
        std::fs::write(dir.path().join("a.JPG"), b"1").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let v = load(&Input::Images(dir.path().into()), None).unwrap();
        let got: Vec<&[u8]> = v.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(got, [b"1", b"2"]);
        let empty = tempfile::tempdir().unwrap();
        let e = load(&Input::Images(empty.path().into()), None).unwrap_err();
        assert!(e.to_string().contains("no images"), "{e}");
        let e = load(&Input::Body(dir.path().join("missing.bin")), None).unwrap_err();
        assert!(e.to_string().contains("missing.bin"), "{e}");
        let e = load(&Input::Body(dir.path().into()), None).unwrap_err();
        assert!(e.to_string().contains("--images"), "{e}");
    }
}
