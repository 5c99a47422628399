//! Test images for the classification comparison, made at run time by
//! resizing a real photo and re-encoding it as JPEG (quality 90).

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use crate::{Error, Result};

/// The photo used when none is given.
pub const DEFAULT_PHOTO: &str = "dog.jpg";
/// Where the repository keeps its test photos.
const PHOTO_DIR: &str = "test-data/images";
/// JPEG quality of the generated images.
pub const QUALITY: u8 = 90;

/// The source photo: `dir/dog.jpg` (or the first JPEG/PNG in `dir`) when a
/// directory is given; otherwise `test-data/images/dog.jpg` in the current
/// directory or the nearest parent, or near the executable.
pub fn find_photo(dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        let p = d.join(DEFAULT_PHOTO);
        if p.is_file() {
            return Ok(p);
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::io(format_args!("reading {}", d.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    ["jpg", "jpeg", "png"].contains(&x.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        found.sort();
        return found.into_iter().next().ok_or_else(|| {
            Error::Options(format!(
                "no {DEFAULT_PHOTO} nor any .jpg/.png photo in {}",
                d.display()
            ))
        });
    }
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        starts.push(exe_dir);
    }
    for s in &starts {
        for a in s.ancestors() {
            let p = a.join(PHOTO_DIR).join(DEFAULT_PHOTO);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::Options(format!(
        "cannot find {PHOTO_DIR}/{DEFAULT_PHOTO} here or in a parent directory (pass --images DIR)"
    )))
}

/// One generated image.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// JPEG bytes.
    pub jpeg: Vec<u8>,
}

/// Resize `photo` to each size (aspect ratio not kept: exact sizes) and
/// encode each as a JPEG of quality [`QUALITY`].
pub fn generate(photo: &Path, sizes: &[(u32, u32)]) -> Result<Vec<TestImage>> {
    let what = photo.display().to_string();
    let src = image::open(photo).map_err(|source| Error::Image {
        what: what.clone(),
        source,
    })?;
    let src = image::DynamicImage::ImageRgb8(src.to_rgb8());
    sizes
        .iter()
        .map(|&(w, h)| {
            let img = src.resize_exact(w, h, FilterType::Triangle).to_rgb8();
            let mut jpeg = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
                .encode_image(&img)
                .map_err(|source| Error::Image {
                    what: format!("{what} at {w}×{h}"),
                    source,
                })?;
            Ok(TestImage {
                width: w,
                height: h,
                jpeg,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_decodable_jpegs_of_the_asked_sizes() {
        let photo = find_photo(None).unwrap();
        let imgs = generate(&photo, &[(32, 24), (64, 64)]).unwrap();
        assert_eq!(imgs.len(), 2);
        for i in &imgs {
            let d = image::load_from_memory(&i.jpeg).unwrap();
            assert_eq!((d.width(), d.height()), (i.width, i.height));
            assert_eq!(&i.jpeg[..2], &[0xff, 0xd8]);
        }
    }

    #[test]
    fn a_directory_without_photos_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let e = find_photo(Some(d.path())).unwrap_err();
        assert!(e.to_string().contains("no dog.jpg"), "{e}");
    }
}
