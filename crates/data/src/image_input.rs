//! Decoding a PNG or JPEG file into a model's input pixels: `c` planar channels of `h x w`
//! bytes (grey or RGB, resized), with the image's declared size and the decoder's allocations
//! bounded before any pixel buffer is made.

use crate::DataError;
use image::imageops::FilterType;
use std::io::Cursor;
use std::path::Path;

/// Bounds on what [`decode_image`] accepts, checked against the file's header before the
/// decoder allocates its pixel buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The largest width or height, in pixels.
    pub max_side: u32,
    /// The most bytes the decoder may allocate for one image.
    pub max_alloc: u64,
    /// The largest file, in bytes, [`read_image_file`] reads.
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    /// 16384 pixels a side, 512 MiB of decoder memory, 256 MiB files: a 100-megapixel
    /// photograph passes, a forged header declaring gigapixels does not.
    fn default() -> Self {
        Self {
            max_side: 16_384,
            max_alloc: 512 << 20,
            max_file_bytes: 256 << 20,
        }
    }
}

/// Decodes `bytes` (a PNG or JPEG file, named `path` in errors) into `c` planar channels of
/// `h x w` bytes for `shape = [c, h, w]`: converted to grey (`c == 1`) or RGB (`c == 3`),
/// resized exactly (bilinear), grey levels inverted when `invert`.
///
/// # Errors
/// [`DataError::Format`] naming `path` when the bytes are not a PNG or JPEG image, the image
/// is corrupt, its declared size exceeds `limits`, or `shape` has a zero or a channel count
/// other than 1 or 3.
pub fn decode_image(
    bytes: &[u8],
    path: &Path,
    [c, h, w]: [usize; 3],
    invert: bool,
    limits: &DecodeLimits,
) -> Result<Vec<u8>, DataError> {
    if c != 1 && c != 3 {
        return Err(DataError::format(
            path,
            format!("models with {c} input channels cannot read image files (1 or 3)"),
        ));
    }
    let (Ok(w32), Ok(h32)) = (u32::try_from(w), u32::try_from(h)) else {
        return Err(DataError::format(
            path,
            format!("input size {h}x{w} is too large"),
        ));
    };
    if h == 0 || w == 0 {
        return Err(DataError::format(
            path,
            format!("input size {h}x{w} is empty"),
        ));
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::format(path, format!("cannot read: {e}")))?;
    if reader.format().is_none() {
        return Err(DataError::format(
            path,
            "not a PNG or JPEG image (unrecognised signature)",
        ));
    }
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_side);
    image_limits.max_image_height = Some(limits.max_side);
    image_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(image_limits);
    let img = reader
        .decode()
        .map_err(|e| DataError::format(path, format!("not a readable PNG or JPEG image: {e}")))?;
    let img = img.resize_exact(w32, h32, FilterType::Triangle);
    let mut pixels = if c == 1 {
        img.to_luma8().into_raw()
    } else {
        // RGB interleaved -> planar CHW.
        let rgb = img.to_rgb8().into_raw();
        let plane = h * w;
        let mut planar = vec![0u8; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                planar[ch * plane + i] = v;
            }
        }
        planar
    };
    if invert {
        pixels.iter_mut().for_each(|p| *p = 255 - *p);
    }
    Ok(pixels)
}

/// Reads the image file at `path` and decodes it as [`decode_image`] does; a file larger than
/// `limits.max_file_bytes` is refused before it is read.
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read; as [`decode_image`], and
/// [`DataError::Format`] for a file over the size limit.
pub fn read_image_file(
    path: &Path,
    shape: [usize; 3],
    invert: bool,
    limits: &DecodeLimits,
) -> Result<Vec<u8>, DataError> {
    let metadata = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if metadata.is_dir() {
        return Err(DataError::format(
            path,
            "is a directory, expected a PNG or JPEG file",
        ));
    }
    let len = metadata.len();
    if len > limits.max_file_bytes {
        return Err(DataError::format(
            path,
            format!(
                "file of {len} bytes is larger than the {} bytes an input image may have",
                limits.max_file_bytes
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image(&bytes, path, shape, invert, limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};

    fn png(img: impl Into<image::DynamicImage>) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.into().write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn grey_png_at_model_size_round_trips_and_inverts() {
        let img = GrayImage::from_fn(4, 3, |x, y| Luma([(10 * x + 50 * y) as u8]));
        let bytes = png(img.clone());
        let path = Path::new("a.png");
        let limits = DecodeLimits::default();
        let got = decode_image(&bytes, path, [1, 3, 4], false, &limits).unwrap();
        assert_eq!(got, img.into_raw());
        let inv = decode_image(&bytes, path, [1, 3, 4], true, &limits).unwrap();
        assert_eq!(inv[0], 255);
        assert_eq!(inv[5], 255 - 60);
    }

    #[test]
    fn rgb_becomes_planar() {
        let img = RgbImage::from_fn(2, 2, |x, y| Rgb([x as u8, y as u8, 200]));
        let got = decode_image(
            &png(img),
            Path::new("c.png"),
            [3, 2, 2],
            false,
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(got, [0, 1, 0, 1, 0, 0, 1, 1, 200, 200, 200, 200]);
    }

    #[test]
    fn text_and_oversized_headers_are_refused_naming_the_file() {
        let limits = DecodeLimits::default();
        let err = decode_image(b"hello", Path::new("notes.png"), [1, 2, 2], false, &limits)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notes.png") && err.contains("not a PNG"),
            "{err}"
        );

        let big = png(GrayImage::new(64, 8));
        let small = DecodeLimits {
            max_side: 32,
            ..limits
        };
        let err = decode_image(&big, Path::new("wide.png"), [1, 2, 2], false, &small)
            .unwrap_err()
            .to_string();
        assert!(err.contains("wide.png"), "{err}");
        let err = decode_image(&big, Path::new("x.png"), [2, 2, 2], false, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 input channels"), "{err}");
    }
}
