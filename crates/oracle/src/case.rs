//! Loading reference cases from `.safetensors` files.

use ganglion_tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What went wrong reading a reference case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OracleError {
    /// The file or directory could not be read.
    #[error("oracle: cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("oracle: {path} is not a valid safetensors file: {message}")]
    Format {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor or parameter the op needs is missing or malformed.
    #[error("oracle: case {case}: {message}")]
    Case {
        /// The case name.
        case: String,
        /// What is wrong.
        message: String,
    },
}

/// One reference case: an op, its parameters and its named tensors.
#[derive(Debug, Clone)]
pub struct Case {
    /// The file stem (`conv2d_007`).
    pub name: String,
    /// The op (`conv2d`, `max_pool2d`, ...); empty when the metadata has none.
    pub op: String,
    /// The op's parameters as stored: JSON values in strings.
    pub params: BTreeMap<String, String>,
    /// The tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
}

impl Case {
    fn error(&self, message: String) -> OracleError {
        OracleError::Case {
            case: self.name.clone(),
            message,
        }
    }

    fn param_json(&self, key: &str) -> Result<serde_json::Value, OracleError> {
        let raw = self
            .params
            .get(key)
            .ok_or_else(|| self.error(format!("missing parameter `{key}`")))?;
        serde_json::from_str(raw)
            .map_err(|e| self.error(format!("parameter `{key}` = {raw:?} is not JSON: {e}")))
    }

    /// A tensor by name.
    ///
    /// # Errors
    /// [`OracleError::Case`] when the case has no such tensor.
    pub fn tensor(&self, name: &str) -> Result<&Tensor, OracleError> {
        self.tensors
            .get(name)
            .ok_or_else(|| self.error(format!("missing tensor `{name}`")))
    }

    /// A tensor by name, if present (optional tensors such as `bias`).
    pub fn optional_tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// A `[h, w]` pair parameter (`"[2, 3]"`); a single integer is used for both axes.
    ///
    /// # Errors
    /// [`OracleError::Case`] when missing or not a pair of non-negative integers.
    pub fn pair(&self, key: &str) -> Result<[usize; 2], OracleError> {
        let value = self.param_json(key)?;
        let as_usize = |v: &serde_json::Value| v.as_u64().map(|x| x as usize);
        match &value {
            serde_json::Value::Array(items) if items.len() == 2 => {
                match (as_usize(&items[0]), as_usize(&items[1])) {
                    (Some(h), Some(w)) => Ok([h, w]),
                    _ => Err(self.error(format!("parameter `{key}` is not a pair of integers"))),
                }
            }
            v => as_usize(v)
                .map(|x| [x, x])
                .ok_or_else(|| self.error(format!("parameter `{key}` is not a pair of integers"))),
        }
    }

    /// A non-negative integer parameter.
    ///
    /// # Errors
    /// [`OracleError::Case`] when missing or not a non-negative integer.
    pub fn usize(&self, key: &str) -> Result<usize, OracleError> {
        self.param_json(key)?
            .as_u64()
            .map(|x| x as usize)
            .ok_or_else(|| self.error(format!("parameter `{key}` is not an integer")))
    }

    /// A number parameter.
    ///
    /// # Errors
    /// [`OracleError::Case`] when missing or not a number.
    pub fn f64(&self, key: &str) -> Result<f64, OracleError> {
        self.param_json(key)?
            .as_f64()
            .ok_or_else(|| self.error(format!("parameter `{key}` is not a number")))
    }

    /// A boolean parameter (`"true"` / `"false"`).
    ///
    /// # Errors
    /// [`OracleError::Case`] when missing or not a boolean.
    pub fn bool(&self, key: &str) -> Result<bool, OracleError> {
        self.param_json(key)?
            .as_bool()
            .ok_or_else(|| self.error(format!("parameter `{key}` is not a boolean")))
    }
}

/// The repository's bundled copy of the PyTorch reference vectors
/// (`tests/fixtures/oracle` at the workspace root, found from this crate's source location).
pub fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/oracle")
}

/// Reads one case file.
///
/// # Errors
/// [`OracleError::Io`] when unreadable, [`OracleError::Format`] when not valid safetensors or a
/// tensor is not `F32`.
pub fn load_case(path: &Path) -> Result<Case, OracleError> {
    let bytes = std::fs::read(path).map_err(|source| OracleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |message: String| OracleError::Format {
        path: path.to_path_buf(),
        message,
    };
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format(e.to_string()))?;
    let params: BTreeMap<String, String> = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let st = SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format(format!(
                "tensor `{name}` has dtype {:?}, expected F32",
                view.dtype()
            )));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let tensor = Tensor::new(view.shape(), data).map_err(|e| format(e.to_string()))?;
        tensors.insert(name, tensor);
    }
    let mut params = params;
    let op = params.remove("op").unwrap_or_default();
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Case {
        name,
        op,
        params,
        tensors,
    })
}

/// Reads every `*.safetensors` file of a directory, sorted by file name.
///
/// # Errors
/// The first error of [`load_case`], or [`OracleError::Io`] when the directory is unreadable.
pub fn load_dir(dir: &Path) -> Result<Vec<Case>, OracleError> {
    let io = |source| OracleError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| load_case(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_cases_load_with_their_parameters() {
        let cases = load_dir(&bundled_dir()).unwrap();
        assert_eq!(cases.len(), 200);
        let conv = cases.iter().find(|c| c.name == "conv2d_000").unwrap();
        assert_eq!(conv.op, "conv2d");
        assert_eq!(conv.pair("stride").unwrap(), [2, 3]);
        assert_eq!(conv.usize("groups").unwrap(), 1);
        assert_eq!(conv.tensor("input").unwrap().shape(), &[4, 3, 14, 13]);
        let pool = cases.iter().find(|c| c.name == "pool_000").unwrap();
        assert!(pool.bool("ceil_mode").unwrap());
        let ce = cases
            .iter()
            .find(|c| c.name == "cross_entropy_001")
            .unwrap();
        assert!((ce.f64("label_smoothing").unwrap() - 0.1).abs() < 1e-12);
        assert!(conv.tensor("nope").is_err());
    }

    #[test]
    fn garbage_file_is_a_format_error() {
        let dir = std::env::temp_dir().join(format!("oracle-garbage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.safetensors");
        std::fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").unwrap();
        let err = load_case(&path).unwrap_err();
        assert!(matches!(err, OracleError::Format { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
