//! The IDX reader (the MNIST file format): gzip or raw, header checked against the real size
//! before anything large is allocated.
//!
//! Layout: a big-endian `u32` magic `0x0000_TTNN` (`TT` the element type, `0x08` for unsigned
//! bytes; `NN` the number of dimensions), one big-endian `u32` per dimension, then the elements
//! row-major. A file whose first two bytes are `1f 8b` is read through a gzip decoder.

use crate::DataError;
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

/// Magic of an IDX file of unsigned-byte images `[count, rows, cols]`.
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of unsigned-byte labels `[count]`.
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Element type code of unsigned bytes, the only one the data sets use.
const TYPE_U8: u8 = 0x08;

/// The most bytes reserved up front for a gzip payload before any of it has been decompressed
/// is the larger of this and [`GZIP_RESERVE_RATIO`] times the compressed size (and never more
/// than the header implies); past that the buffer grows with the stream.
const GZIP_RESERVE_FLOOR: u64 = 1 << 20;
/// MNIST's image files compress about 5:1, so 8x the compressed size usually reserves the
/// whole payload at once while a forged header in a small file cannot reserve much.
const GZIP_RESERVE_RATIO: u64 = 8;

/// The content of an unsigned-byte IDX file of any rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first.
    pub dims: Vec<usize>,
    /// The elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Images read from an IDX image file (magic `0x00000803`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows of each image.
    pub rows: usize,
    /// Columns of each image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// What the caller expects the file to hold, for the magic check and the messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Images,
    Labels,
    Any,
}

impl Expect {
    fn describe(self, dims: &[u64]) -> String {
        match (self, dims) {
            (Self::Images, [n, r, c]) => format!("{n} images of {r}x{c}"),
            (Self::Labels, [n]) => format!("{n} labels"),
            _ => format!("dimensions {dims:?}"),
        }
    }

    fn payload_noun(self) -> &'static str {
        match self {
            Self::Images => "pixels",
            Self::Labels => "labels",
            Self::Any => "data",
        }
    }
}

/// Reads an unsigned-byte IDX file of any rank, gzip-compressed or raw.
///
/// # Errors
/// [`DataError::Io`] when the file cannot be opened or read; [`DataError::Format`] when the
/// magic is not that of an unsigned-byte IDX file, the header is cut short, the payload is
/// shorter or longer than the header implies, or the gzip stream is corrupt.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    read_file(path, Expect::Any)
}

/// Reads an IDX image file (magic `0x00000803`, dimensions `[count, rows, cols]`).
///
/// # Errors
/// As [`read_idx`], and [`DataError::Format`] for another magic or an image side of zero.
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    let array = read_file(path, Expect::Images)?;
    let [count, rows, cols] = array.dims[..] else {
        unreachable!("the magic check admits only rank-3 image files");
    };
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: array.data,
    })
}

/// Reads an IDX label file (magic `0x00000801`, dimensions `[count]`).
///
/// # Errors
/// As [`read_idx`], and [`DataError::Format`] for another magic.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    Ok(read_file(path, Expect::Labels)?.data)
}

fn read_file(path: &Path, expect: Expect) -> Result<IdxArray, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| DataError::io(path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let reserve_cap = GZIP_RESERVE_FLOOR.max(file_len.saturating_mul(GZIP_RESERVE_RATIO));
        parse(
            MultiGzDecoder::new(reader),
            path,
            Source::Gzip { reserve_cap },
            expect,
        )
    } else {
        parse(reader, path, Source::Raw { file_len }, expect)
    }
}

#[derive(Clone, Copy)]
enum Source {
    /// Uncompressed: the payload size is known from the file size.
    Raw { file_len: u64 },
    /// Compressed: the payload size is known only once the stream ends.
    Gzip { reserve_cap: u64 },
}

impl Source {
    fn read_error(self, path: &Path, e: std::io::Error) -> DataError {
        match self {
            Self::Raw { .. } => DataError::io(path, e),
            Self::Gzip { .. } => DataError::format(path, format!("corrupt gzip stream: {e}")),
        }
    }

    fn holds(self) -> &'static str {
        match self {
            Self::Raw { .. } => "the file holds",
            Self::Gzip { .. } => "the decompressed file holds",
        }
    }
}

/// Fills `buf` from `r`; returns how many bytes were read before the stream ended.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn parse(
    mut r: impl Read,
    path: &Path,
    source: Source,
    expect: Expect,
) -> Result<IdxArray, DataError> {
    let format = |message: String| DataError::format(path, message);
    let mut magic = [0u8; 4];
    let got = read_full(&mut r, &mut magic).map_err(|e| source.read_error(path, e))?;
    if got < 4 {
        return Err(format(format!(
            "{} {got} bytes, too few for an IDX header",
            source.holds()
        )));
    }
    let magic_value = u32::from_be_bytes(magic);
    let wanted = match expect {
        Expect::Images => Some(IDX_IMAGES_MAGIC),
        Expect::Labels => Some(IDX_LABELS_MAGIC),
        Expect::Any => None,
    };
    match wanted {
        Some(w) if magic_value != w => {
            let what = if expect == Expect::Images {
                "an IDX image file"
            } else {
                "an IDX label file"
            };
            return Err(format(format!(
                "wrong magic 0x{magic_value:08x} (expected 0x{w:08x} for {what})"
            )));
        }
        None if magic[0] != 0 || magic[1] != 0 => {
            return Err(format(format!(
                "wrong magic 0x{magic_value:08x} (an IDX file starts with two zero bytes)"
            )));
        }
        None if magic[2] != TYPE_U8 => {
            return Err(format(format!(
                "IDX element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                magic[2]
            )));
        }
        _ => {}
    }
    let ndim = usize::from(magic[3]);
    let mut dims = Vec::with_capacity(ndim);
    for axis in 0..ndim {
        let mut word = [0u8; 4];
        let got = read_full(&mut r, &mut word).map_err(|e| source.read_error(path, e))?;
        if got < 4 {
            return Err(format(format!(
                "header is cut short: dimension {axis} of {ndim} is missing"
            )));
        }
        dims.push(u64::from(u32::from_be_bytes(word)));
    }
    let described = expect.describe(&dims);
    if expect == Expect::Images && (dims[1] == 0 || dims[2] == 0) {
        return Err(format(format!(
            "header claims {described}, an empty image size"
        )));
    }
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&p| usize::try_from(p).is_ok())
        .ok_or_else(|| {
            format(format!(
                "header claims {described}, too many bytes to address"
            ))
        })?;
    let noun = expect.payload_noun();

    let reserve = match source {
        Source::Raw { file_len } => {
            // The header is 4 + 4 * ndim bytes, all of which were just read from the file.
            let available = file_len.saturating_sub(4 + 4 * ndim as u64);
            if available < payload {
                return Err(format(format!(
                    "header claims {described} but the file holds {available} bytes of {noun}"
                )));
            }
            if available > payload {
                return Err(format(format!(
                    "trailing data: header claims {described} ({payload} bytes) but the file \
                     holds {available} bytes after the header"
                )));
            }
            payload
        }
        Source::Gzip { reserve_cap } => payload.min(reserve_cap),
    };
    // Both values fit `usize`: `payload` was checked above and `reserve <= payload`.
    let payload_len = payload as usize;
    let mut data = Vec::with_capacity(reserve as usize);
    (&mut r)
        .take(payload)
        .read_to_end(&mut data)
        .map_err(|e| source.read_error(path, e))?;
    if data.len() < payload_len {
        return Err(format(format!(
            "header claims {described} but {} {} bytes of {noun}",
            source.holds(),
            data.len()
        )));
    }
    let mut probe = [0u8; 1];
    if read_full(&mut r, &mut probe).map_err(|e| source.read_error(path, e))? > 0 {
        return Err(format(format!(
            "trailing data: header claims {described} ({payload} bytes) but {} more",
            source.holds()
        )));
    }
    data.shrink_to_fit();
    Ok(IdxArray {
        dims: dims.into_iter().map(|d| d as usize).collect(),
        data,
    })
}

/// Encodes an unsigned-byte IDX file (uncompressed), the inverse of [`read_idx`]; for tests,
/// tools and small hand-made data sets.
///
/// # Errors
/// [`DataError::Invalid`] when there are more than 255 dimensions, a dimension exceeds
/// `u32::MAX`, or `data.len()` is not the product of `dims`.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Result<Vec<u8>, DataError> {
    let op = "encode_idx";
    let ndim = u8::try_from(dims.len())
        .map_err(|_| DataError::invalid(op, format!("{} dimensions, at most 255", dims.len())))?;
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if expected != Some(data.len()) {
        return Err(DataError::invalid(
            op,
            format!("dimensions {dims:?} do not hold {} bytes", data.len()),
        ));
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, ndim]);
    for &d in dims {
        let d = u32::try_from(d)
            .map_err(|_| DataError::invalid(op, format!("dimension {d} exceeds u32::MAX")))?;
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}
