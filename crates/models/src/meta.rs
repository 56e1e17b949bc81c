//! [`ModelMeta`]: what a saved model says about itself beyond its tensors (architecture, input
//! shape, normalisation, class names), stored as safetensors string metadata.

use crate::ModelError;
use crate::module::Module;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Metadata key of the zoo architecture name (`lenet5`).
pub const KEY_ARCHITECTURE: &str = "ganglion.architecture";
/// Metadata key of the input item shape, comma-separated (`1,28,28`).
pub const KEY_INPUT_SHAPE: &str = "ganglion.input_shape";
/// Metadata key of the per-channel normalisation mean, comma-separated (`0.1307`).
pub const KEY_NORMALIZE_MEAN: &str = "ganglion.normalize_mean";
/// Metadata key of the per-channel normalisation standard deviation (`0.3081`).
pub const KEY_NORMALIZE_STD: &str = "ganglion.normalize_std";
/// Metadata key of the class names, a JSON list of strings (`["0","1",...]`).
pub const KEY_CLASSES: &str = "ganglion.classes";
/// The key PyTorch-side tools (`safetensors.torch`, `transformers`) read to know the tensors
/// are PyTorch's layout; always written as `pt`.
pub const KEY_FORMAT: &str = "format";

/// The most values one input item of `ganglion.input_shape` may have (a 3x4096x4096 image is
/// 50 million).
const MAX_INPUT_ELEMENTS: usize = 1 << 26;

/// What a model file says about the model, every field optional: a plain PyTorch state dict
/// has none of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelMeta {
    /// The zoo architecture (`lenet5`), from which a loader can rebuild the model.
    pub architecture: Option<String>,
    /// The shape of one input item, `[C, H, W]`.
    pub input_shape: Option<Vec<usize>>,
    /// Per-channel mean subtracted from inputs before the model sees them.
    pub normalize_mean: Option<Vec<f32>>,
    /// Per-channel standard deviation inputs are divided by.
    pub normalize_std: Option<Vec<f32>>,
    /// Class names, index `i` naming logit `i`.
    pub classes: Option<Vec<String>>,
    /// Every other metadata entry of the file (including `format`), kept as read and written
    /// back on save.
    pub extra: BTreeMap<String, String>,
}

impl ModelMeta {
    /// The metadata a model knows about itself: its architecture and input shape.
    pub fn for_model(model: &dyn Module) -> Self {
        Self {
            architecture: model.architecture().map(str::to_string),
            input_shape: model.input_shape().map(<[usize]>::to_vec),
            ..Self::default()
        }
    }

    /// The string map stored in the file: `format: pt`, the `extra` entries and the Ganglion
    /// fields that are set.
    pub fn to_metadata(&self) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = self
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        map.insert(KEY_FORMAT.to_string(), "pt".to_string());
        let join = |xs: &mut dyn Iterator<Item = String>| xs.collect::<Vec<_>>().join(",");
        if let Some(a) = &self.architecture {
            map.insert(KEY_ARCHITECTURE.to_string(), a.clone());
        }
        if let Some(s) = &self.input_shape {
            map.insert(
                KEY_INPUT_SHAPE.to_string(),
                join(&mut s.iter().map(usize::to_string)),
            );
        }
        // `Display` of f32 is the shortest text that reads back to the same value.
        if let Some(m) = &self.normalize_mean {
            map.insert(
                KEY_NORMALIZE_MEAN.to_string(),
                join(&mut m.iter().map(f32::to_string)),
            );
        }
        if let Some(s) = &self.normalize_std {
            map.insert(
                KEY_NORMALIZE_STD.to_string(),
                join(&mut s.iter().map(f32::to_string)),
            );
        }
        if let Some(c) = &self.classes {
            map.insert(
                KEY_CLASSES.to_string(),
                serde_json::Value::from(c.clone()).to_string(),
            );
        }
        map
    }

    /// Reads the metadata of the file at `path` (named in errors only).
    ///
    /// # Errors
    /// [`ModelError::Metadata`] naming the key when a Ganglion entry cannot be parsed.
    pub fn from_metadata(
        map: Option<&HashMap<String, String>>,
        path: &Path,
    ) -> Result<Self, ModelError> {
        let mut meta = Self::default();
        let Some(map) = map else {
            return Ok(meta);
        };
        let bad = |key: &str, value: &str, reason: String| ModelError::Metadata {
            path: path.to_path_buf(),
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        for (key, value) in map {
            match key.as_str() {
                KEY_ARCHITECTURE => meta.architecture = Some(value.trim().to_string()),
                KEY_INPUT_SHAPE => {
                    let dims = parse_list::<usize>(value).map_err(|r| bad(key, value, r))?;
                    if dims.is_empty() || dims.contains(&0) {
                        return Err(bad(key, value, "dimensions must be positive".into()));
                    }
                    // Commands allocate inputs of this shape (summary, predict), so a forged
                    // header must not be able to ask for gigabytes.
                    let numel = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                    if numel.is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
                        return Err(bad(
                            key,
                            value,
                            format!("more than {MAX_INPUT_ELEMENTS} values per input item"),
                        ));
                    }
                    meta.input_shape = Some(dims);
                }
                KEY_NORMALIZE_MEAN | KEY_NORMALIZE_STD => {
                    let xs = parse_list::<f32>(value).map_err(|r| bad(key, value, r))?;
                    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
                        return Err(bad(key, value, "expected finite numbers".into()));
                    }
                    if key == KEY_NORMALIZE_STD && xs.iter().any(|&x| x <= 0.0) {
                        return Err(bad(
                            key,
                            value,
                            "standard deviations must be positive".into(),
                        ));
                    }
                    if key == KEY_NORMALIZE_MEAN {
                        meta.normalize_mean = Some(xs);
                    } else {
                        meta.normalize_std = Some(xs);
                    }
                }
                KEY_CLASSES => {
                    let names: Vec<String> = serde_json::from_str(value).map_err(|e| {
                        bad(key, value, format!("expected a JSON list of strings: {e}"))
                    })?;
                    meta.classes = Some(names);
                }
                _ => {
                    meta.extra.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(meta)
    }
}

/// `1,28,28`, `[1, 28, 28]` or `0.5` as a list of numbers.
fn parse_list<T: std::str::FromStr>(text: &str) -> Result<Vec<T>, String> {
    let inner = text.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<T>()
                .map_err(|_| format!("`{}` is not a number", part.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_string_map() {
        let meta = ModelMeta {
            architecture: Some("lenet5".into()),
            input_shape: Some(vec![1, 28, 28]),
            normalize_mean: Some(vec![0.1307]),
            normalize_std: Some(vec![0.3081]),
            classes: Some((0..10).map(|i| i.to_string()).collect()),
            extra: BTreeMap::new(),
        };
        let map = meta.to_metadata();
        assert_eq!(map[KEY_FORMAT], "pt");
        assert_eq!(map[KEY_INPUT_SHAPE], "1,28,28");
        assert_eq!(
            map[KEY_CLASSES],
            r#"["0","1","2","3","4","5","6","7","8","9"]"#
        );
        let back = ModelMeta::from_metadata(Some(&map), Path::new("m")).unwrap();
        assert_eq!(back.extra.get(KEY_FORMAT).map(String::as_str), Some("pt"));
        let mut expected = meta;
        expected.extra.insert(KEY_FORMAT.into(), "pt".into());
        assert_eq!(back, expected);
    }

    #[test]
    fn bad_entries_name_the_key() {
        let mut map = HashMap::new();
        map.insert(KEY_INPUT_SHAPE.to_string(), "1,x,28".to_string());
        let err = ModelMeta::from_metadata(Some(&map), Path::new("m.safetensors")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("m.safetensors") && msg.contains(KEY_INPUT_SHAPE),
            "{msg}"
        );
        map.insert(KEY_INPUT_SHAPE.to_string(), "[3, 32, 32]".to_string());
        map.insert(KEY_NORMALIZE_STD.to_string(), "0.2,0".to_string());
        assert!(ModelMeta::from_metadata(Some(&map), Path::new("m")).is_err());
        map.remove(KEY_NORMALIZE_STD);
        let meta = ModelMeta::from_metadata(Some(&map), Path::new("m")).unwrap();
        assert_eq!(meta.input_shape, Some(vec![3, 32, 32]));
        assert_eq!(
            ModelMeta::from_metadata(None, Path::new("m")).unwrap(),
            ModelMeta::default()
        );
    }
}
