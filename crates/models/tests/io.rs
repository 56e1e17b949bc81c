//! Save/load: round trips, PyTorch-style files written directly with the safetensors crate,
//! mismatch reports, damaged files and atomic writes.

use ganglion_autograd::Graph;
use ganglion_models::{
    Entry, Mismatch, ModelError, ModelMeta, Module, lenet5, load, load_into, mnistnet, read_meta,
    resnet20, save, to_bytes,
};
use ganglion_tensor::{Rng, Tensor, init};
use safetensors::{Dtype, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;

/// A hand-made tensor for writing fixtures without going through `save`.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
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

fn f32_raw(shape: &[usize], values: &[f32]) -> Raw {
    Raw {
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn write_raw(path: &Path, tensors: &[(String, Raw)], meta: Option<HashMap<String, String>>) {
    let views = tensors.iter().map(|(n, t)| (n.as_str(), t));
    std::fs::write(path, safetensors::serialize(views, meta).unwrap()).unwrap();
}

/// Deterministic, distinctive values for tensor number `k`.
fn pattern(shape: &[usize], k: usize) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| (i as f32 * 0.37 + k as f32 * 1.3).sin() * 0.2)
        .collect()
}

fn eval_output(m: &dyn Module, x: &Tensor) -> Tensor {
    let mut g = Graph::inference();
    let v = g.input(x.clone());
    let y = m.forward(&mut g, v).unwrap();
    g.value(y).clone()
}

fn counters(m: &dyn Module) -> Vec<i64> {
    let mut out = Vec::new();
    m.visit("", &mut |_, e| {
        if let Entry::Counter(c) = e {
            out.push(c.load(Ordering::Relaxed));
        }
    });
    out
}

fn state_dict_error(err: ModelError) -> Vec<Mismatch> {
    match err {
        ModelError::StateDict { mismatches, .. } => mismatches.0,
        other => panic!("expected a state-dict error, got {other}"),
    }
}

#[test]
fn save_then_load_reproduces_outputs_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet.safetensors");
    let mut rng = Rng::seed_from(1);
    let mut net = resnet20(&mut rng);
    let x = init::normal(&[2, 3, 32, 32], 0.2, 1.0, &mut rng);
    // Two training passes move the running statistics and the counters off their defaults.
    for _ in 0..2 {
        let mut g = Graph::new();
        let v = g.input(x.clone());
        net.forward(&mut g, v).unwrap();
    }
    net.set_training(false);
    let meta = ModelMeta {
        normalize_mean: Some(vec![0.4914, 0.4822, 0.4465]),
        normalize_std: Some(vec![0.247, 0.243, 0.261]),
        classes: Some(
            [
                "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ..ModelMeta::for_model(&net)
    };
    save(&net, &meta, &path).unwrap();
    let want = eval_output(&net, &x);

    let (mut loaded, read) = load(&path, None).unwrap();
    loaded.set_training(false);
    assert_eq!(eval_output(loaded.as_ref(), &x), want);
    assert_eq!(counters(loaded.as_ref()), vec![2; 19]);
    assert_eq!(read.architecture.as_deref(), Some("resnet20"));
    assert_eq!(read.input_shape, Some(vec![3, 32, 32]));
    assert_eq!(read.normalize_mean, meta.normalize_mean);
    assert_eq!(read.normalize_std, meta.normalize_std);
    assert_eq!(read.classes, meta.classes);
    assert_eq!(read.extra.get("format").map(String::as_str), Some("pt"));
    assert_eq!(read_meta(&path).unwrap(), read);

    // Into a differently-initialised model of the same architecture.
    let mut other = resnet20(&mut Rng::seed_from(99));
    other.set_training(false);
    assert_ne!(eval_output(&other, &x), want);
    load_into(&other, &path).unwrap();
    assert_eq!(eval_output(&other, &x), want);
}

#[test]
fn the_same_model_saves_to_the_same_bytes() {
    let net = lenet5(&mut Rng::seed_from(3));
    let meta = ModelMeta {
        normalize_mean: Some(vec![0.1307]),
        normalize_std: Some(vec![0.3081]),
        classes: Some((0..10).map(|d| d.to_string()).collect()),
        ..ModelMeta::for_model(&net)
    };
    let first = to_bytes(&net, &meta).unwrap();
    // Each save builds its metadata map anew; several tries make a chance match unlikely.
    for _ in 0..8 {
        assert_eq!(to_bytes(&net, &meta).unwrap(), first);
    }
    // The header stays a valid safetensors header: 8-byte aligned, and it loads.
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lenet5.safetensors");
    std::fs::write(&path, &first).unwrap();
    let read = read_meta(&path).unwrap();
    assert_eq!(read.classes, meta.classes);
    assert_eq!(read.normalize_mean, meta.normalize_mean);
    let x = init::normal(&[2, 1, 28, 28], 0.0, 1.0, &mut Rng::seed_from(4));
    let (loaded, _) = load(&path, None).unwrap();
    assert_eq!(eval_output(loaded.as_ref(), &x), eval_output(&net, &x));
}

#[test]
fn a_pytorch_style_lenet5_state_dict_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lenet5_torch.safetensors");
    let reference = lenet5(&mut Rng::seed_from(2));
    let mut tensors = Vec::new();
    for (k, (name, p)) in reference.named_parameters().into_iter().enumerate() {
        let shape = p.shape();
        let values = pattern(&shape, k);
        p.set_value(Tensor::new(&shape, values.clone()).unwrap())
            .unwrap();
        // One tensor in double precision, as a PyTorch model saved after `.double()` has.
        let raw = if name == "fc3.weight" {
            Raw {
                dtype: Dtype::F64,
                shape,
                bytes: values
                    .iter()
                    .flat_map(|&v| f64::from(v).to_le_bytes())
                    .collect(),
            }
        } else {
            f32_raw(&shape, &values)
        };
        tensors.push((name, raw));
    }
    write_raw(&path, &tensors, None);
    let x = init::uniform(&[2, 1, 28, 28], 0.0, 1.0, &mut Rng::seed_from(3));

    let fresh = lenet5(&mut Rng::seed_from(4));
    let meta = load_into(&fresh, &path).unwrap();
    assert_eq!(meta, ModelMeta::default());
    assert_eq!(eval_output(&fresh, &x), eval_output(&reference, &x));

    let (named, _) = load(&path, Some("lenet5")).unwrap();
    assert_eq!(eval_output(named.as_ref(), &x), eval_output(&reference, &x));
    let err = load(&path, None).err().unwrap();
    assert!(matches!(err, ModelError::NoArchitecture { .. }), "{err}");
}

#[test]
fn a_pytorch_style_resnet20_state_dict_with_i64_counters_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet20_torch.safetensors");
    let mut reference = resnet20(&mut Rng::seed_from(5));
    let mut tensors = Vec::new();
    for (k, (name, entry)) in reference.state_entries().into_iter().enumerate() {
        let raw = match entry {
            Entry::Param(p) | Entry::Buffer(p) => {
                let shape = p.shape();
                let mut values = pattern(&shape, k);
                if name.ends_with("running_var") || name.ends_with("bn1.weight") {
                    values.iter_mut().for_each(|v| *v = 0.5 + v.abs());
                }
                p.set_value(Tensor::new(&shape, values.clone()).unwrap())
                    .unwrap();
                f32_raw(&shape, &values)
            }
            Entry::Counter(c) => {
                c.store(7, Ordering::Relaxed);
                Raw {
                    dtype: Dtype::I64,
                    shape: vec![],
                    bytes: 7i64.to_le_bytes().to_vec(),
                }
            }
        };
        tensors.push((name, raw));
    }
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    write_raw(&path, &tensors, Some(meta));
    reference.set_training(false);
    let x = init::normal(&[2, 3, 32, 32], 0.0, 1.0, &mut Rng::seed_from(6));

    let mut fresh = resnet20(&mut Rng::seed_from(7));
    fresh.set_training(false);
    load_into(&fresh, &path).unwrap();
    assert_eq!(counters(&fresh), vec![7; 19]);
    assert_eq!(eval_output(&fresh, &x), eval_output(&reference, &x));
}

#[test]
fn counters_stored_as_floats_or_i32_are_accepted() {
    let mut rng = Rng::seed_from(8);
    let net = resnet20(&mut rng);
    let mut tensors = Vec::new();
    for (i, (name, entry)) in net.state_entries().into_iter().enumerate() {
        let raw = match entry {
            Entry::Param(p) | Entry::Buffer(p) => f32_raw(&p.shape(), p.value().data()),
            Entry::Counter(_) if i % 2 == 0 => f32_raw(&[1], &[3.0]),
            Entry::Counter(_) => Raw {
                dtype: Dtype::I32,
                shape: vec![],
                bytes: 3i32.to_le_bytes().to_vec(),
            },
        };
        tensors.push((name, raw));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counters.safetensors");
    write_raw(&path, &tensors, None);
    load_into(&net, &path).unwrap();
    assert_eq!(counters(&net), vec![3; 19]);
}

#[test]
fn mismatched_files_name_every_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::seed_from(9);
    let mnist_path = dir.path().join("mnistnet.safetensors");
    let mnist = mnistnet(&mut rng);
    save(&mnist, &ModelMeta::for_model(&mnist), &mnist_path).unwrap();
    let lenet = lenet5(&mut rng);
    let before: Vec<Tensor> = lenet.parameters().iter().map(|p| p.value()).collect();

    let err = load_into(&lenet, &mnist_path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("mnistnet.safetensors"), "{msg}");
    assert!(
        msg.contains("conv1.weight")
            && msg.contains("[32, 1, 3, 3]")
            && msg.contains("[6, 1, 5, 5]"),
        "{msg}"
    );
    let found = state_dict_error(err);
    for name in ["fc3.weight", "fc3.bias"] {
        assert!(
            found
                .iter()
                .any(|m| matches!(m, Mismatch::Missing { name: n, .. } if n == name)),
            "{name} not reported missing: {found:?}"
        );
    }
    assert!(found.iter().any(|m| matches!(
        m,
        Mismatch::Shape { name, expected, found }
            if name == "fc1.weight" && expected == &[120, 400] && found == &[128, 9216]
    )));
    // Eight shape mismatches (conv1, conv2, fc1, fc2, weight and bias each) and fc3 missing.
    assert_eq!(found.len(), 10, "{found:?}");
    // A failed load changes nothing.
    let after: Vec<Tensor> = lenet.parameters().iter().map(|p| p.value()).collect();
    assert_eq!(before, after);

    // The other way round the extra layer is unexpected.
    let lenet_path = dir.path().join("lenet5.safetensors");
    save(&lenet, &ModelMeta::default(), &lenet_path).unwrap();
    let found = state_dict_error(load_into(&mnist, &lenet_path).unwrap_err());
    for name in ["fc3.bias", "fc3.weight"] {
        assert!(
            found
                .iter()
                .any(|m| matches!(m, Mismatch::Unexpected { name: n, .. } if n == name)),
            "{name} not reported unexpected: {found:?}"
        );
    }
    // The metadata names an architecture, but a caller who names another gets the mismatch.
    assert!(load(&mnist_path, Some("lenet5")).is_err());
    assert_eq!(
        load(&mnist_path, None).unwrap().0.num_parameters(),
        1_199_882
    );
}

#[test]
fn wrong_shapes_and_dtypes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let net = lenet5(&mut Rng::seed_from(10));
    let mut tensors: Vec<(String, Raw)> = net
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, f32_raw(&p.shape(), p.value().data())))
        .collect();
    tensors[1].1 = f32_raw(&[7], &[0.0; 7]); // conv1.bias
    tensors[3].1 = Raw {
        dtype: Dtype::I32,
        shape: vec![16],
        bytes: vec![0; 64],
    }; // conv2.bias
    write_raw(&path, &tensors, None);
    let err = load_into(&net, &path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("conv1.bias") && msg.contains("[7]") && msg.contains("[6]"),
        "{msg}"
    );
    assert!(msg.contains("conv2.bias") && msg.contains("I32"), "{msg}");
    let found = state_dict_error(err);
    assert_eq!(found.len(), 2, "{found:?}");

    // A counter of the wrong kind.
    let bn = resnet20(&mut Rng::seed_from(11));
    let tensors: Vec<(String, Raw)> = bn
        .state_entries()
        .into_iter()
        .map(|(n, e)| match e {
            Entry::Param(p) | Entry::Buffer(p) => (n, f32_raw(&p.shape(), p.value().data())),
            Entry::Counter(_) => (
                n,
                Raw {
                    dtype: Dtype::U8,
                    shape: vec![],
                    bytes: vec![1],
                },
            ),
        })
        .collect();
    write_raw(&path, &tensors, None);
    let found = state_dict_error(load_into(&bn, &path).unwrap_err());
    assert_eq!(found.len(), 19);
    assert!(found.iter().all(
        |m| matches!(m, Mismatch::Dtype { name, .. } if name.ends_with("num_batches_tracked"))
    ));
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let net = lenet5(&mut Rng::seed_from(12));
    let bytes = to_bytes(&net, &ModelMeta::for_model(&net)).unwrap();
    let path = dir.path().join("damaged.safetensors");
    // Cut before the header length ends, inside the header, inside the data.
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for (cut, says) in [
        (0, "0 bytes long"),
        (4, "4 bytes long"),
        (8, "announce a header of"),
        (20, "announce a header of"),
        (bytes.len() / 2, "not a valid safetensors file"),
        (bytes.len() - 1, "not a valid safetensors file"),
    ] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let header_cut = cut < header_end;
        let mut errors = vec![load_into(&net, &path).unwrap_err()];
        if header_cut {
            errors.push(read_meta(&path).unwrap_err());
        }
        for err in errors {
            let text = err.to_string();
            if header_cut {
                assert!(
                    matches!(err, ModelError::NotSafetensors { .. }),
                    "cut {cut}: {err}"
                );
            } else {
                assert!(matches!(err, ModelError::Format { .. }), "cut {cut}: {err}");
            }
            assert!(
                text.contains("damaged.safetensors") && text.contains(says),
                "{text}"
            );
        }
        assert!(load(&path, None).is_err());
    }
    // Header length claiming more than the file holds.
    let mut long = bytes.clone();
    long[..8].copy_from_slice(&(bytes.len() as u64 * 4).to_le_bytes());
    std::fs::write(&path, &long).unwrap();
    assert!(matches!(
        load_into(&net, &path),
        Err(ModelError::NotSafetensors { .. })
    ));
    assert!(matches!(
        read_meta(&path),
        Err(ModelError::NotSafetensors { .. })
    ));

    // Other formats, recognised by their first bytes: what to do instead is said.
    for (start, says) in [
        (
            &b"PK\x03\x04\x14\x00\x00\x00"[..],
            "safetensors.torch.save_file",
        ),
        (&b"\x80\x02}q\x00(X\x05"[..], "pickle"),
        (&b"\x89HDF\r\n\x1a\n"[..], "HDF5"),
        (&b"\x93NUMPY\x01\x00"[..], "NumPy"),
    ] {
        let mut file = start.to_vec();
        file.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &file).unwrap();
        for err in [
            load_into(&net, &path).unwrap_err(),
            read_meta(&path).unwrap_err(),
        ] {
            assert!(matches!(err, ModelError::NotSafetensors { .. }), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
    // A valid file whose header length starts with a pickle's bytes (`80 0k`, k = 2 to 5:
    // 640, 896, 1152 or 1408) loads: a class name of the right length pads the header to it.
    let with_header_of = |len: u64| {
        (0..1000)
            .map(|k| {
                let meta = ModelMeta {
                    classes: Some(vec!["x".repeat(k)]),
                    ..ModelMeta::for_model(&net)
                };
                to_bytes(&net, &meta).unwrap()
            })
            .find(|b| u64::from_le_bytes(b[..8].try_into().unwrap()) == len)
    };
    let len = (2..=5u64)
        .map(|k| k << 8 | 0x80)
        .find(|&len| len > header_end as u64)
        .expect("lenet5's header is under 1408 bytes");
    let file = with_header_of(len).expect("a class name pads the header to that length");
    assert_eq!(file[0], 0x80);
    std::fs::write(&path, &file).unwrap();
    load_into(&net, &path).unwrap();
    read_meta(&path).unwrap();

    // A well-formed header whose offsets point past the end of the data.
    let header = br#"{"conv1.bias":{"dtype":"F32","shape":[6],"data_offsets":[0,1000000]}}"#;
    let mut forged = (header.len() as u64).to_le_bytes().to_vec();
    forged.extend_from_slice(header);
    forged.extend_from_slice(&[0u8; 24]);
    std::fs::write(&path, &forged).unwrap();
    assert!(matches!(
        load_into(&net, &path),
        Err(ModelError::Format { .. })
    ));
    // Offsets in range but disagreeing with the shape.
    let header = br#"{"conv1.bias":{"dtype":"F32","shape":[600000],"data_offsets":[0,24]}}"#;
    let mut forged = (header.len() as u64).to_le_bytes().to_vec();
    forged.extend_from_slice(header);
    forged.extend_from_slice(&[0u8; 24]);
    std::fs::write(&path, &forged).unwrap();
    assert!(matches!(
        load_into(&net, &path),
        Err(ModelError::Format { .. })
    ));

    let missing = dir.path().join("absent.safetensors");
    assert!(matches!(
        load_into(&net, &missing),
        Err(ModelError::Io { .. })
    ));
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let a = lenet5(&mut Rng::seed_from(13));
    let b = lenet5(&mut Rng::seed_from(14));
    save(&a, &ModelMeta::for_model(&a), &path).unwrap();
    save(&b, &ModelMeta::for_model(&b), &path).unwrap();
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["model.safetensors"]);
    // The second save replaced the first.
    let loaded = lenet5(&mut Rng::seed_from(15));
    load_into(&loaded, &path).unwrap();
    assert_eq!(loaded.parameters()[0].value(), b.parameters()[0].value());

    // A failed save reports the path and leaves nothing behind.
    let nowhere = dir.path().join("no-such-dir").join("m.safetensors");
    let err = save(&a, &ModelMeta::default(), &nowhere).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }) && err.to_string().contains("no-such-dir"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// A module that reports one parameter twice.
struct Twice(ganglion_autograd::Param);

impl Module for Twice {
    fn forward(
        &self,
        _g: &mut Graph,
        x: ganglion_autograd::Var,
    ) -> Result<ganglion_autograd::Var, ModelError> {
        Ok(x)
    }
    fn visit<'a>(&'a self, _prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        v("w", Entry::Param(&self.0));
        v("w", Entry::Param(&self.0));
    }
    fn set_training(&mut self, _on: bool) {}
    fn is_training(&self) -> bool {
        true
    }
    fn kind(&self) -> &str {
        "Twice"
    }
}

#[test]
fn duplicate_names_are_refused() {
    let m = Twice(ganglion_autograd::Param::new(Tensor::zeros(&[1])));
    let err = to_bytes(&m, &ModelMeta::default()).unwrap_err();
    assert!(
        matches!(&err, ModelError::DuplicateName { name } if name == "w"),
        "{err}"
    );
}
