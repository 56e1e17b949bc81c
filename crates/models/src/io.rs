//! Saving and loading model state as safetensors files laid out like PyTorch's `state_dict`
//! (same names, `F32` row-major tensors, `num_batches_tracked` as an `I64` scalar), plus
//! [`ModelMeta`] in the file's string metadata.

use crate::ModelError;
use crate::error::{Mismatch, Mismatches};
use crate::meta::ModelMeta;
use crate::module::{Entry, Module, counter_value, set_counter};
use crate::zoo;
use ganglion_tensor::{Rng, Tensor};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A tensor owned for serialisation.
struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Owned {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The file's bytes for `model`'s state and `meta`, as [`save`] writes them.
///
/// # Errors
/// [`ModelError::DuplicateName`] if two entries of the model share a name.
pub fn to_bytes(model: &dyn Module, meta: &ModelMeta) -> Result<Vec<u8>, ModelError> {
    let mut tensors: Vec<(String, Owned)> = Vec::new();
    let mut seen = HashSet::new();
    for (name, entry) in model.state_entries() {
        if !seen.insert(name.clone()) {
            return Err(ModelError::DuplicateName { name });
        }
        let owned = match entry {
            Entry::Param(p) | Entry::Buffer(p) => {
                let data = p.read();
                Owned {
                    dtype: Dtype::F32,
                    shape: data.value.shape().to_vec(),
                    bytes: data
                        .value
                        .data()
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect(),
                }
            }
            // PyTorch stores the counter as a 0-d int64 tensor.
            Entry::Counter(c) => Owned {
                dtype: Dtype::I64,
                shape: Vec::new(),
                bytes: counter_value(c).to_le_bytes().to_vec(),
            },
        };
        tensors.push((name, owned));
    }
    let views = tensors.iter().map(|(n, t)| (n.as_str(), t));
    let bytes = safetensors::serialize(views, Some(meta.to_metadata())).map_err(|problem| {
        ModelError::Format {
            path: PathBuf::from("<memory>"),
            problem,
        }
    })?;
    Ok(sorted_header(bytes))
}

/// Safetensors `bytes` with the header's keys in sorted order, so that the same tensors and
/// metadata always give the same file. `safetensors::serialize` writes the metadata from a
/// `HashMap`, whose order changes from one map to the next: without this, a model saved
/// twice gave two different files. The data and its offsets are left as they are; the
/// header keeps the format's padding with spaces to a multiple of 8 bytes. Bytes whose
/// header does not parse are returned unchanged.
pub fn sorted_header(bytes: Vec<u8>) -> Vec<u8> {
    let parsed = bytes
        .get(..8)
        .map(|n| u64::from_le_bytes(n.try_into().expect("8 bytes")) as usize)
        .and_then(|n| Some((n, bytes.get(8..8usize.checked_add(n)?)?)))
        .and_then(|(n, header)| {
            Some((n, serde_json::from_slice::<serde_json::Value>(header).ok()?))
        });
    let Some((n, header)) = parsed else {
        return bytes;
    };
    // `serde_json::Map` keeps its keys sorted.
    let mut json = serde_json::to_vec(&header).expect("a parsed JSON value serialises");
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// Writes `model`'s state and `meta` to `path` atomically: the bytes go to a temporary file in
/// the same directory, which is flushed to disk and then renamed over `path`, so a reader sees
/// either the old file or the complete new one, never a partial write. The temporary file is
/// removed if anything fails.
///
/// # Errors
/// [`ModelError::Io`] naming the file when writing fails; as [`to_bytes`].
pub fn save(
    model: &dyn Module,
    meta: &ModelMeta,
    path: impl AsRef<Path>,
) -> Result<(), ModelError> {
    let path = path.as_ref();
    let bytes = to_bytes(model, meta)?;
    write_atomically(path, &bytes)
}

/// Removes the temporary file when dropped unless the rename happened.
struct TempGuard<'p> {
    path: &'p Path,
    armed: bool,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the original error is what the caller needs to see.
            let _ = fs::remove_file(self.path);
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |op: &'static str, source: std::io::Error| ModelError::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            io(
                "saving",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Same directory, so the rename cannot cross file systems; the process id and a counter
    // keep concurrent saves apart.
    let temp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| io("creating the temporary file", e))?;
    let mut guard = TempGuard {
        path: &temp,
        armed: true,
    };
    file.write_all(bytes)
        .map_err(|e| io("writing the temporary file", e))?;
    file.sync_all()
        .map_err(|e| io("syncing the temporary file", e))?;
    drop(file);
    fs::rename(&temp, path).map_err(|e| io("renaming the temporary file", e))?;
    guard.armed = false;
    // Make the rename itself durable; directories cannot be opened for syncing everywhere,
    // and the file is in place either way, so a failure here is not an error.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads only the metadata of the file at `path` (the header, not the tensors).
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read, [`ModelError::NotSafetensors`] when it
/// cannot start a safetensors file (too short, a header longer than itself, another format),
/// [`ModelError::Format`] when its header is not a valid safetensors header,
/// [`ModelError::Metadata`] for an unparsable Ganglion entry.
pub fn read_meta(path: impl AsRef<Path>) -> Result<ModelMeta, ModelError> {
    let path = path.as_ref();
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        op: "reading",
        source,
    };
    let format = |problem| ModelError::Format {
        path: path.to_path_buf(),
        problem,
    };
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut start = [0u8; 8];
    let read = file_len.min(8) as usize;
    file.read_exact(&mut start[..read]).map_err(io)?;
    // Checked against the file's size before allocating the header buffer.
    check_start(&start[..read], file_len, path)?;
    let n = u64::from_le_bytes(start);
    if n > 100_000_000 {
        return Err(format(SafeTensorError::HeaderTooLarge));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(io)?;
    let text =
        std::str::from_utf8(&header).map_err(|e| format(SafeTensorError::InvalidHeader(e)))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format(SafeTensorError::InvalidHeaderDeserialization(e)))?;
    let map: Option<HashMap<String, String>> = match value.get("__metadata__") {
        Some(m) => Some(
            serde_json::from_value(m.clone())
                .map_err(|e| format(SafeTensorError::InvalidHeaderDeserialization(e)))?,
        ),
        None => None,
    };
    ModelMeta::from_metadata(map.as_ref(), path)
}

/// Loads the file at `path` into `model`, whose parameters, buffers and counters are
/// overwritten, and returns the file's metadata.
///
/// The whole header is validated before any tensor is built (offsets within the file, sizes
/// matching shapes and dtypes, the file fully covered). Then every state-dict name of the
/// model must be in the file with the model's shape, and the file must hold nothing else;
/// otherwise nothing is changed and the error lists every mismatch by name. Floating-point
/// tensors may be `F32`, `F64`, `F16` or `BF16` (converted to `f32`); counters may be `I64`
/// (as PyTorch saves them), `I32`, `F32` or `F64`, of shape `[]` or `[1]`.
///
/// # Errors
/// [`ModelError::Io`], [`ModelError::NotSafetensors`] for a file that cannot start a
/// safetensors file (too short, cut inside its header, another format: a PyTorch `.pt`
/// archive is named as such), [`ModelError::Format`] for one that is not valid safetensors
/// (truncated data, offsets past the end), [`ModelError::StateDict`] listing every missing,
/// unexpected, mis-shaped or mis-typed tensor, [`ModelError::Metadata`].
pub fn load_into(model: &dyn Module, path: impl AsRef<Path>) -> Result<ModelMeta, ModelError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let file = parse(&bytes, path)?;
    let meta = ModelMeta::from_metadata(file.metadata.as_ref(), path)?;
    apply(model, &file, path)?;
    Ok(meta)
}

/// Loads `bytes` (a whole safetensors file, named `path` in errors) into `model`, as
/// [`load_into`] does with a file.
///
/// # Errors
/// As [`load_into`].
pub fn load_from_bytes(
    model: &dyn Module,
    bytes: &[u8],
    path: impl AsRef<Path>,
) -> Result<ModelMeta, ModelError> {
    let path = path.as_ref();
    let file = parse(bytes, path)?;
    let meta = ModelMeta::from_metadata(file.metadata.as_ref(), path)?;
    apply(model, &file, path)?;
    Ok(meta)
}

/// Rebuilds a zoo model from the file at `path` and loads its state. The architecture is
/// `architecture` when given (a plain PyTorch state dict names none), else the file's
/// `ganglion.architecture`. For `allconv` the input channels come from the file's
/// `ganglion.input_shape`, or from its `conv1.weight` when the metadata is absent.
///
/// # Errors
/// [`ModelError::NoArchitecture`] when neither names one, [`ModelError::UnknownModel`], and
/// as [`load_into`].
pub fn load(
    path: impl AsRef<Path>,
    architecture: Option<&str>,
) -> Result<(Box<dyn Module>, ModelMeta), ModelError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let file = parse(&bytes, path)?;
    let meta = ModelMeta::from_metadata(file.metadata.as_ref(), path)?;
    let arch = match (architecture, &meta.architecture) {
        (Some(a), _) => a.to_string(),
        (None, Some(a)) => a.clone(),
        (None, None) => {
            return Err(ModelError::NoArchitecture {
                path: path.to_path_buf(),
            });
        }
    };
    // The weights are overwritten; the seed only fixes what the unused draws are.
    let mut rng = Rng::seed_from(0);
    let model: Box<dyn Module> = if arch == "allconv" {
        // The channel count comes from the file's own `conv1.weight`, whose size the file's
        // length bounds, before the metadata's claim: a forged `input_shape` must not size the
        // model (a billion channels would be a terabyte of weights). Without that tensor the
        // load fails below anyway, listing what is missing.
        let channels = file
            .tensors
            .get("conv1.weight")
            .and_then(|t| t.shape.get(1).copied())
            .filter(|&c| c > 0)
            .unwrap_or(1);
        let mut net = zoo::allconv_with(channels, &mut rng)?;
        if let Some(shape) = &meta.input_shape {
            net = net.with_input_shape(shape);
        }
        Box::new(net)
    } else {
        zoo::by_name(&arch, &mut rng)?
    };
    apply(model.as_ref(), &file, path)?;
    Ok((model, meta))
}

fn read_file(path: &Path) -> Result<Vec<u8>, ModelError> {
    fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        op: "reading",
        source,
    })
}

/// Formats recognised by their first bytes, files mistaken for safetensors ones: the magic
/// bytes, what they are, and what to do instead.
const OTHER_FORMATS: [(&[u8], &str); 4] = [
    (
        b"PK\x03\x04",
        "it is a zip archive, as PyTorch's `torch.save` writes (`.pt`, `.pth`); save the \
         state dict with `safetensors.torch.save_file(model.state_dict(), path)` instead",
    ),
    (
        b"\x80",
        "it starts like a Python pickle, as older versions of `torch.save` write; save the \
         state dict with `safetensors.torch.save_file(model.state_dict(), path)` instead",
    ),
    (
        b"\x89HDF",
        "it is an HDF5 file, as Keras writes (`.h5`); Ganglion reads safetensors state dicts",
    ),
    (
        b"\x93NUMPY",
        "it is a NumPy array file (`.npy`); Ganglion reads safetensors state dicts",
    ),
];

/// Whether the first bytes `start` (at most 8) of a file of `file_len` bytes can begin a
/// safetensors file: 8 bytes of header length, and a header that fits in the file. When not,
/// the error names the format the bytes start like, if one of [`OTHER_FORMATS`]: their
/// magic bytes read as a header length far larger than any file. (A valid length may start
/// with such a byte: 640 is `80 02 00 ...`, a pickle's start.)
fn check_start(start: &[u8], file_len: u64, path: &Path) -> Result<(), ModelError> {
    let not = |found: String| ModelError::NotSafetensors {
        path: path.to_path_buf(),
        found,
    };
    let other = OTHER_FORMATS
        .iter()
        .find(|(magic, _)| start.starts_with(magic))
        .map(|(_, what)| what.to_string());
    let Ok(len) = <[u8; 8]>::try_from(start) else {
        return Err(not(other.unwrap_or_else(|| {
            format!(
                "it is {file_len} bytes long, shorter than the 8-byte header length a \
                 safetensors file starts with"
            )
        })));
    };
    let n = u64::from_le_bytes(len);
    if n > file_len - 8 {
        return Err(not(other.unwrap_or_else(|| {
            format!(
                "its first 8 bytes announce a header of {n} bytes, but only {} follow them: the \
                 file is cut short, or is not safetensors",
                file_len - 8
            )
        })));
    }
    Ok(())
}

/// A validated file: its metadata and, per tensor, its info and bytes.
struct Parsed<'b> {
    metadata: Option<HashMap<String, String>>,
    tensors: HashMap<String, FileTensor<'b>>,
}

struct FileTensor<'b> {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: &'b [u8],
}

fn parse<'b>(bytes: &'b [u8], path: &Path) -> Result<Parsed<'b>, ModelError> {
    let format = |problem| ModelError::Format {
        path: path.to_path_buf(),
        problem,
    };
    check_start(&bytes[..bytes.len().min(8)], bytes.len() as u64, path)?;
    // `read_metadata` checks the header length against the buffer, every tensor's offsets
    // against its shape and dtype, and that the tensors cover the data exactly: nothing can
    // point past the end of the file.
    let (n, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
    let data = &bytes[8 + n..];
    let mut tensors = HashMap::new();
    for (name, info) in header.tensors() {
        let TensorInfo {
            dtype,
            shape,
            data_offsets: (start, end),
        } = info.clone();
        let slice = data
            .get(start..end)
            .ok_or_else(|| format(SafeTensorError::InvalidOffset(name.clone())))?;
        tensors.insert(
            name,
            FileTensor {
                dtype,
                shape,
                bytes: slice,
            },
        );
    }
    Ok(Parsed {
        metadata: header.metadata().clone(),
        tensors,
    })
}

/// A checked value ready to be written into the model.
enum Value {
    Tensor(Tensor),
    Counter(i64),
}

const FLOAT_DTYPES: &str = "F32 (or F64, F16, BF16)";
const COUNTER_DTYPES: &str = "I64 (or I32, F32, F64)";

fn apply(model: &dyn Module, file: &Parsed<'_>, path: &Path) -> Result<(), ModelError> {
    let entries = model.state_entries();
    let mut mismatches = Vec::new();
    let mut values = Vec::with_capacity(entries.len());
    let mut known = HashSet::new();
    for (name, entry) in &entries {
        known.insert(name.as_str());
        let Some(t) = file.tensors.get(name) else {
            mismatches.push(Mismatch::Missing {
                name: name.clone(),
                shape: entry.shape(),
            });
            continue;
        };
        let (shape_ok, dtypes) = match entry {
            Entry::Param(p) | Entry::Buffer(p) => (t.shape == p.shape(), FLOAT_DTYPES),
            Entry::Counter(_) => (t.shape.is_empty() || t.shape == [1], COUNTER_DTYPES),
        };
        if !shape_ok {
            mismatches.push(Mismatch::Shape {
                name: name.clone(),
                expected: entry.shape(),
                found: t.shape.clone(),
            });
            continue;
        }
        let value = match entry {
            Entry::Param(_) | Entry::Buffer(_) => {
                floats(t).and_then(|v| Tensor::new(&t.shape, v).ok().map(Value::Tensor))
            }
            Entry::Counter(_) => counter(t).map(Value::Counter),
        };
        match value {
            Some(v) => values.push(v),
            None => mismatches.push(Mismatch::Dtype {
                name: name.clone(),
                expected: dtypes,
                found: format!("{:?}", t.dtype),
            }),
        }
    }
    let mut unexpected: Vec<_> = file
        .tensors
        .iter()
        .filter(|(name, _)| !known.contains(name.as_str()))
        .map(|(name, t)| Mismatch::Unexpected {
            name: name.clone(),
            shape: t.shape.clone(),
        })
        .collect();
    unexpected.sort_by(|a, b| a.name().cmp(b.name()));
    mismatches.extend(unexpected);
    if !mismatches.is_empty() {
        return Err(ModelError::StateDict {
            path: path.to_path_buf(),
            mismatches: Mismatches(mismatches),
        });
    }
    // Everything checked: now overwrite, so a failed load leaves the model as it was.
    for ((_, entry), value) in entries.iter().zip(values) {
        match (entry, value) {
            (Entry::Param(p) | Entry::Buffer(p), Value::Tensor(t)) => p.write().value = t,
            (Entry::Counter(c), Value::Counter(v)) => set_counter(c, v),
            _ => unreachable!("values are built in entry order with the entry's kind"),
        }
    }
    Ok(())
}

/// The elements of a floating-point tensor as `f32`, or `None` for another dtype.
fn floats(t: &FileTensor<'_>) -> Option<Vec<f32>> {
    let b = t.bytes;
    Some(match t.dtype {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32)
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        // bfloat16 is the top half of an f32.
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
        _ => return None,
    })
}

/// The value of a one-element counter tensor, or `None` for an unsupported dtype or a
/// non-finite float.
fn counter(t: &FileTensor<'_>) -> Option<i64> {
    let b = t.bytes;
    match t.dtype {
        Dtype::I64 => Some(i64::from_le_bytes(b.get(..8)?.try_into().ok()?)),
        Dtype::I32 => Some(i64::from(i32::from_le_bytes(b.get(..4)?.try_into().ok()?))),
        Dtype::F32 | Dtype::F64 => {
            let v = floats(t)?.first().copied()?;
            v.is_finite().then_some(v.round() as i64)
        }
        _ => None,
    }
}

/// IEEE 754 half precision to single precision (exact: every `f16` is an `f32`).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = (h >> 10) & 0x1f;
    let frac = u32::from(h & 0x3ff);
    match exp {
        // Zero and subnormals: frac * 2^-24.
        0 => sign * frac as f32 * (1.0 / 16_777_216.0),
        0x1f => {
            let bits = (u32::from(h & 0x8000) << 16) | 0x7f80_0000 | (frac << 13);
            f32::from_bits(bits)
        }
        _ => {
            let bits =
                (u32::from(h & 0x8000) << 16) | ((u32::from(exp) + 112) << 23) | (frac << 13);
            f32::from_bits(bits)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }
}
